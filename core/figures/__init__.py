"""Figure builders: pure functions from data to Plotly figures.

- `style.py`: the house style (fonts, fixed colour scales, maps as PNG images, plain-dict figures);
- `player.py`: the one animation player (buttons, slider, frames, time cursor) every animated
  figure uses;
- `diagram.py`: the cell diagram and PyTorch's equations with one unit's numbers;
- `explore.py`, `compare.py`, `training.py`: each page's figures, composed from row builders.
"""
