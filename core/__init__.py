"""gatescope's logic, in rooms; nothing in this package imports Streamlit, so all of it runs and
is tested without a browser.

- `cells.py`: the cell vocabulary (names, gates, colours, equations), read by everything else;
- `engine/`: the tracing engine and what is measured on traces (`from core.engine import trace`);
- `tasks/`: the built-in tasks: data, encoding, loss, metric, baseline and the scoring rule;
- `model.py`: the network every task trains (embedding -> nn.RNN/LSTM/GRU -> head);
- `training/`: the training loop, background sessions in processes, the shipped model zoo;
- `io/`: reading users' weights and CSVs, writing traces and models as files;
- `views/`: what each page computes, and page state in the URL (`views/state.py`);
- `figures/`: pure Plotly builders: the house style, the animation player, each page's figures;
- `content.py`: the explanations and captions in content/; `claims.py`: every lesson the app
  states, with the check that proves it on the shipped models (a lesson whose check fails is
  not shown);
- `limits.py`, `sharing.py`: what one request may ask of the server, and how visitors share it.

`core/trace.py` and `core/zoo.py` only re-export (`from core.trace import trace, Trace`,
`from core.zoo import load_model, load_user_weights`) for scripts and outside checks.
"""
