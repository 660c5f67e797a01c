"""devicelab: faithful implementations of methods for efficient, private and adaptive on-device learning."""

__version__ = "0.1.0"
