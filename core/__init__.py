"""gatescope's logic: tracing, tasks, training, the model zoo, loading and figures.

Nothing in this package imports Streamlit, so all of it runs and is tested without a browser.
"""
