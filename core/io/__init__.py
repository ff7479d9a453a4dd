"""Files in and out: users' weights (`loading.py`) and CSV columns (`tables.py`); traces,
figures and trained models as downloads (`exports.py`). Nothing from an upload touches disk."""
