"""Training: the loop (`loop.py`), runs in background processes that a page polls and stops
(`session.py`, `worker.py`), and the shipped model zoo in models/ (`zoo.py`)."""
