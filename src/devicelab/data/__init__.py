"""Offline corpora (``data.corpora``), loaders of the real public data sets (``data.datasets``), the cache."""
