"""`from core.loading import load_user_model, UserModel` for scripts and outside checks: a
user's whole model (recurrent module, embedding, head, vocabulary) from their files. The code
lives in core/io/ (user_model.py, loading.py and the Keras and ONNX readers beside them)."""

from core.io.loading import WeightsError, load_user_weights
from core.io.user_model import UserModel, load_user_model

__all__ = ["load_user_model", "UserModel", "load_user_weights", "WeightsError"]
