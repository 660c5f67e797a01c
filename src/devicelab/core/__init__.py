"""The experiment contract shared by every method: configs, run folders, checkpoints, claims, reports."""
