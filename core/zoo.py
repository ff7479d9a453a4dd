"""`from core.zoo import load_model, load_user_weights` keeps working for scripts and outside
checks: the zoo lives in core/training/zoo.py, the loader of users' weights in core/io/loading.py."""

from core.io.loading import load_user_weights
from core.training.zoo import available, build_model, load_model, model_info

__all__ = ["load_model", "load_user_weights", "model_info", "build_model", "available"]
