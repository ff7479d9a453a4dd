"""Files in and out. In: users' weights in every format (`loading.py`, with `keras_files.py` and
`onnx_files.py` converting Keras and ONNX layers to PyTorch's naming), their whole model found
in those weights (`user_model.py`), their vocabularies, text, ids and arrays (`sequences.py`) and
CSV columns (`tables.py`). Out: traces, figures and trained models as downloads (`exports.py`).
Nothing from an upload touches disk."""
