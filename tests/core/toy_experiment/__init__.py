"""A tiny experiment that follows the method template (registered with ``DEVICELAB_PLUGINS``)."""

from .config import ToyConfig
from .data import ToyTask, make_task
from .model import build_model
from .recipe import train_stage

__all__ = ["ToyConfig", "ToyTask", "build_model", "make_task", "train_stage"]
