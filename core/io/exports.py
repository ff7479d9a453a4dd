"""What gatescope writes for a user to download: a trace as NPZ or CSV, a figure as standalone
HTML, a trained model as safetensors weights plus JSON of how it was made.

Pure functions from objects to bytes or text; the pages hand them to `st.download_button`.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import safetensors.torch
import torch

from core.engine import Trace
from core.figures.style import PIXELATED_CSS
from core.model import count_parameters, state_tensors
from core.tasks import get_task
from core.training.loop import TrainResult


def trace_table(tr: Trace, layer: int, direction: int, tokens: list[str]):
    """A long-format-free wide table (one row per step) of the chosen layer and direction,
    for CSV download: token, saliency, gradient norms, h[k], c[k] and every gate[k]."""
    import pandas as pd

    T, H = tr.seq_len, tr.hidden_size
    cols: dict[str, np.ndarray | list] = {"t": np.arange(T)}
    cols["token"] = (list(tokens) + [""] * T)[:T]
    cols["saliency"] = tr.grad_input
    cols["grad_h_norm"] = tr.grad_hidden[layer, direction]
    if tr.grad_cell is not None:
        cols["grad_c_norm"] = tr.grad_cell[layer, direction]
    blocks = [("h", tr.hidden[layer, direction])]
    if tr.cell is not None:
        blocks.append(("c", tr.cell[layer, direction]))
    blocks += [(name, arr[layer, direction]) for name, arr in tr.gates.items()]
    frame = pd.DataFrame(cols)
    wide = pd.DataFrame(np.concatenate([b for _, b in blocks], axis=1),
                        columns=[f"{name}[{k}]" for name, _ in blocks for k in range(H)])
    return pd.concat([frame, wide], axis=1)


def trace_npz(tr: Trace, **extra) -> bytes:
    """Every array of the trace (all layers and directions) as one .npz file."""
    arrays = {"hidden": tr.hidden, "grad_hidden": tr.grad_hidden, "grad_input": tr.grad_input,
              "output": tr.output, "objective": np.float32(tr.objective),
              "cell_type": np.array(tr.cell_type)}
    if tr.cell is not None:
        arrays["cell"] = tr.cell
    if tr.grad_cell is not None:
        arrays["grad_cell"] = tr.grad_cell
    for name, arr in tr.gates.items():
        arrays[f"gate_{name}"] = arr
    for key, value in extra.items():
        arrays[key] = np.asarray(value)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def figure_html(fig: go.Figure, title: str = "gatescope") -> str:
    """A standalone HTML file that works offline: plotly.js is embedded, not fetched."""
    spec = fig.to_dict()
    if spec["layout"].get("template", {}) is None:  # the explorer's (see explore_figure)
        spec["layout"]["template"] = {}  # an empty one: to_html reads it, adds nothing
    return pio.to_html(spec, validate=False, include_plotlyjs=True, full_html=True,
                       auto_play=False, config={"displaylogo": False},
                       div_id="gatescope-figure").replace(
        "<head>", f"<head><title>{title}</title><style>{PIXELATED_CSS}</style>", 1)


def model_files(result: TrainResult) -> tuple[bytes, str]:
    """A trained model as (safetensors bytes of the whole SequenceModel's state_dict, JSON of
    how it was made and how it scored). The safetensors file opens in the Explore page's upload
    (it finds the `rnn.*` tensors) and in plain PyTorch:
    `SequenceModel(ModelSpec(**meta["spec"])).load_state_dict(safetensors.torch.load_file(f))`.
    """
    model = result.model
    weights = safetensors.torch.save(state_tensors(model), metadata={
        "format": "gatescope SequenceModel", "task": result.task, "cell": result.cell,
    })
    task = get_task(result.task)
    meta = {
        "format": "gatescope SequenceModel",
        "task": result.task,
        "cell": result.cell,
        "spec": model.spec.to_dict(),
        "vocab": task.vocab.words if task.vocab is not None else None,
        "classes": list(task.classes) if task.classes else None,
        "config": result.config.to_dict(),
        "status": result.status,
        "message": result.message,
        "steps": result.steps,
        "train_seconds": round(result.seconds, 3),
        "param_count": count_parameters(model),
        "heldout": _finite_json(result.score.to_dict()),
        "torch_version": torch.__version__,
    }
    return weights, json.dumps(meta, indent=1, allow_nan=False)


def _finite_json(value):
    """JSON has no NaN or Infinity: a diverged model's infinite loss is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value
