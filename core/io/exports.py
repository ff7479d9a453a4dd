"""What gatescope writes for a user to download: a trace as NPZ or CSV, a figure as standalone
HTML, a slide of it as PNG or an animated GIF (core/figures/slides.py, drawn on the server), a
trained model as safetensors weights plus JSON of how it was made.

Pure functions from objects to bytes or text; the pages hand them to `st.download_button`.
Every trace, figure and slide file carries the view it came from (`TraceView`: task, model,
score, cell, input, layer, direction, unit, step) and is named by it (`TraceView.stem`,
`slide_stem`, `animation_stem`), so files saved from two views never overwrite each other and
each says what it shows. A trained model's
safetensors file says in its metadata what it is (task, cell, head, vocabulary and, for a
vanilla RNN, its nonlinearity), and the upload loader reads it back that way. A run that kept
snapshots also downloads as a history file (`history_file`): the snapshots in a file of their
own, since in the weights file the upload loader would find a recurrent module per snapshot.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import safetensors.torch
import torch

from core.engine import Trace
from core.figures.explore import rank_units
from core.figures.style import PIXELATED_CSS
from core.io.loading import safetensors_metadata
from core.model import count_parameters, rebuild_sequence_model, state_tensors
from core.tasks import Score, get_task
from core.training.loop import TrainConfig, TrainResult
from core.training.snapshots import read_snapshots, snapshots_file

if TYPE_CHECKING:  # the Explore page's types, read by attribute only (views sit above io)
    from core.figures.slides import Slide
    from core.views.explore import ExploreState, Result
    from core.views.models import ModelChoice, Upload

#: Typed input longer than this is cut (with "…") where a view writes it out.
MAX_INPUT_TEXT = 300


def short_hash(*parts: bytes | str) -> str:
    """Eight hex digits identifying some bytes or text (typed input, an upload) in a name."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else bytes(part))
        digest.update(b"\0")
    return digest.hexdigest()[:8]


@dataclass(frozen=True)
class TraceView:
    """What one downloaded trace or figure shows, written into the file and its name."""

    task: str  # the task's name ("adding")
    task_title: str  # and its title ("Adding problem")
    model: str  # the page's label of the model ("shipped trained LSTM · held-out MSE ...")
    score: str  # its held-out score beside the baseline's, in words; "" where it has none
    source: str  # shipped, session, random or upload
    model_id: str  # which weights, in a file name: "shipped", "seed3", "a1b2c3d4" (a hash)
    cell: str  # rnn, lstm or gru
    nonlinearity: str  # the vanilla RNN's tanh or relu; "" for an LSTM or GRU
    input: str  # how the input was made: "sample seed 3", "typed text", "CSV column"
    input_id: str  # which input, in a file name: "sample3", "text-1a2b3c4d", "csv-..."
    input_text: str  # the input tokens, space-separated (cut at MAX_INPUT_TEXT)
    length: int  # steps in the trace
    layer: int
    direction: str  # "forward" or "reverse"
    pick: str  # how the drawn units were chosen: index, most active, most variable
    unit: int  # the unit of the diagram and equations (the first ranked, for a ranking)
    t: int  # the step the figure's cursor starts at

    def fields(self) -> dict[str, str | int]:
        """Every field by name, in order: what the NPZ and CSV exports write."""
        return asdict(self)

    def stem(self) -> str:
        """A file name without extension that differs whenever the view does, e.g.
        `gatescope_adding_lstm_random-seed0_sample3_len40_layer0_unit0_t0` (a ranking names
        itself before the unit: `..._layer0_most-active_unit7_t0`)."""
        return self._stem(f"t{self.t}")

    def slide_stem(self, scale: int) -> str:
        """A slide's (PNG) name: the view's, and the scale, e.g. `..._unit0_t12_2x`."""
        return self._stem(f"t{self.t}", f"{scale}x")

    def animation_stem(self, start: int, stop: int, steps_per_second: int, scale: int) -> str:
        """An animation's (GIF) name: the view's over steps start..stop, its speed and scale,
        e.g. `..._unit0_t0-199_10-steps-per-s_2x`."""
        return self._stem(f"t{start}-{stop}", f"{steps_per_second}-steps-per-s", f"{scale}x")

    def _stem(self, *tail: str) -> str:
        cell = self.cell + (f"-{self.nonlinearity}" if self.nonlinearity == "relu" else "")
        model = self.source if self.model_id == self.source else f"{self.source}-{self.model_id}"
        layer = f"layer{self.layer}" + ("-reverse" if self.direction == "reverse" else "")
        unit = ([] if self.pick == "index" else [self.pick.replace(" ", "-")]) + [
            f"unit{self.unit}"]
        return "_".join(("gatescope", self.task, cell, model, self.input_id,
                         f"len{self.length}", layer, *unit, *tail))

    def caption(self) -> str:
        """One line for a human: what the figure shows."""
        cell = self.cell.upper() + (f" ({self.nonlinearity})" if self.nonlinearity else "")
        units = f"unit {self.unit}" if self.pick == "index" else f"{self.pick} units"
        return (f"{self.task_title} · {cell} · {self.model} · input: {self.input}, "
                f"{self.length} steps · layer {self.layer} {self.direction} · {units} · "
                f"from step {self.t}")

    def title_line(self) -> str:
        """A slide's title: task, cell, model and its score (unless the label has it)."""
        cell = self.cell.upper() + (f" ({self.nonlinearity})" if self.nonlinearity else "")
        score = f" · {self.score}" if self.score and self.score not in self.model else ""
        return f"{self.task_title} · {cell} · {self.model}{score}"

    def input_line(self) -> str:
        """The input in words and its tokens (cut at MAX_INPUT_TEXT)."""
        return f"input ({self.input}, {self.length} steps): {self.input_text}"


#: A user's own model fed its own input (core.views.explore.OwnInput): what the view calls it.
OWN_INPUT = {"text": "text through its vocabulary", "ids": "token ids", "rows": "numbers typed"}


def _own_input(own, result: Result) -> tuple[str, str, str]:
    """(input in words, its id in a file name, its text) of a user's own input: the file's
    own description for a file; numbers as they were fed, a step's features by commas."""
    if own.kind == "file":
        how, key = own.matrix.source, str(own.matrix.key)
    else:
        how, key = OWN_INPUT[own.kind], own.text
    if result.values is None:
        text = " ".join(str(token) for token in result.tokens)
    else:
        text = " ".join(",".join(f"{v:.6g}" for v in row) for row in result.values.tolist())
    return how, f"{own.kind}-{short_hash(key)}", text


def explore_view(state: ExploreState, choice: ModelChoice, result: Result,
                 upload: Upload | None = None, own=None) -> TraceView:
    """The view of the Explore page that `result` was traced for: `state` (the page's
    choices), `choice` (its model), `upload` (the uploaded file, for an upload's name), `own`
    (what a user's own model was fed: core.views.explore.OwnInput; None or "task": the task's
    input, as `state` says)."""
    rnn = choice.rnn
    if state.source == "random":
        model_id = f"seed{state.seed}"
    elif state.source == "session":
        model_id = short_hash(state.run)
    elif state.source == "upload" and upload is not None:
        model_id = short_hash(upload.cache_key, getattr(rnn, "nonlinearity", ""))
    else:
        model_id = state.source
    text = " ".join(str(token) for token in result.tokens)
    task_name, task_title = state.task, get_task(state.task).title
    if own is not None and own.kind != "task":  # no task: the model's own input
        task_name, task_title = "own-input", "Your model on its own input"
        how, input_id, text = _own_input(own, result)
    elif state.input == "text":
        how, input_id = "typed text", f"text-{short_hash(state.text)}"
    elif state.input == "csv":
        inputs = result.example.inputs.detach().cpu().numpy()
        how, input_id = "CSV column", f"csv-{short_hash(inputs.tobytes())}"
    else:
        how, input_id = f"sample seed {state.sample}", f"sample{state.sample}"
    if len(text) > MAX_INPUT_TEXT:
        text = text[:MAX_INPUT_TEXT - 1] + "…"
    layer, direction = int(state.layer), int(state.direction)
    unit = int(state.unit) if state.pick == "index" else rank_units(
        result.trace, layer, direction, state.pick)[0]
    return TraceView(
        task=task_name, task_title=task_title, model=choice.label,
        score=_score_text(choice.score) if choice.score is not None else "",
        source=choice.source, model_id=model_id, cell=choice.cell,
        nonlinearity=getattr(rnn, "nonlinearity", "") if choice.cell == "rnn" else "",
        input=how, input_id=input_id, input_text=text, length=int(result.trace.seq_len),
        layer=layer, direction=("forward", "reverse")[direction], pick=state.pick, unit=unit,
        t=int(state.t))


def _score_text(score: Score) -> str:
    from core.views.models import score_text  # views sit above io: imported where it is used

    return score_text(score)


def trace_table(tr: Trace, layer: int, direction: int, tokens: list[str],
                view: TraceView | None = None):
    """A long-format-free wide table (one row per step) of the chosen layer and direction,
    for CSV download: token, saliency, gradient norms, h[k], c[k] and every gate[k].

    The view goes in as constant columns at the right end, `view_task`, `view_model`, ...,
    `view_t` (one per `TraceView` field), rather than as `# key: value` lines above the
    header: `pandas.read_csv` and Excel both read such a file as it is, with no `comment=` or
    `skiprows=` and no header row pushed down, and the data columns keep their places."""
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
    table = pd.concat([frame, wide], axis=1)
    if view is not None:
        for key, value in view.fields().items():
            table[f"view_{key}"] = value
    return table


def trace_npz(tr: Trace, view: TraceView | None = None, **extra) -> bytes:
    """Every array of the trace (all layers and directions) as one .npz file, with the view
    as `view_<field>` entries (0-d string or integer arrays, read without allow_pickle:
    `{k[5:]: v.item() for k, v in np.load(f).items() if k.startswith("view_")}`)."""
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
    if view is not None:
        for key, value in view.fields().items():
            arrays[f"view_{key}"] = np.asarray(value)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def figure_html(fig: go.Figure, title: str = "gatescope", view: TraceView | None = None) -> str:
    """A standalone HTML file that works offline: plotly.js is embedded, not fetched. With a
    view, its caption is the page's title and a line above the figure, and under it the same
    context as a slide's caption: the model with its score, and the input's tokens."""
    if view is not None:
        title = f"gatescope · {view.caption()}"
    spec = fig.to_dict()
    if spec["layout"].get("template", {}) is None:  # the explorer's (see explore_figure)
        spec["layout"]["template"] = {}  # an empty one: to_html reads it, adds nothing
    page = pio.to_html(spec, validate=False, include_plotlyjs=True, full_html=True,
                       auto_play=False, config={"displaylogo": False},
                       div_id="gatescope-figure").replace(
        "<head>", f"<head><title>{html.escape(title)}</title><style>{PIXELATED_CSS}</style>", 1)
    if view is not None:
        style = 'style="font-family: sans-serif; margin: 4px 8px;"'
        page = page.replace("<body>", f'<body><p id="gatescope-view" {style}>'
                            f"{html.escape(view.caption())}</p>"
                            f'<p id="gatescope-context" {style}>{html.escape(view.title_line())}'
                            f"<br>{html.escape(view.input_line())}</p>", 1)
    return page


def explore_slide(result: Result, view: TraceView, units: list[int], scale: int) -> Slide:
    """The Explore view `view` of `result` as a slide (core/figures/slides.py) at `scale`,
    its caption the view's title and input lines; `units`: the picked units' lines."""
    from core.figures.slides import Slide, SlideText  # matplotlib: only for a slide

    return Slide(result.trace, result.input_sequence,
                 SlideText(view.title_line(), view.input_line()), layer=view.layer,
                 direction=("forward", "reverse").index(view.direction), units=units,
                 unit=view.unit, nonlinearity=view.nonlinearity or "tanh",
                 handoff=result.handoff, scale=scale)


def slide_png(slide: Slide, view: TraceView) -> bytes:
    """The slide at the view's step as PNG; its text chunks carry the caption and the view
    (`gatescope.view`, JSON of `TraceView.fields`)."""
    return slide.png(view.t, {"gatescope.view": json.dumps(view.fields(), ensure_ascii=False)})


def slide_gif(slide: Slide, start: int, stop: int, steps_per_second: int) -> bytes:
    """The slide's playback over steps start..stop (both included) as a looping GIF, one
    frame per step at `steps_per_second`; its comment is the caption."""
    return slide.gif(start, stop, steps_per_second)


def model_files(result: TrainResult) -> tuple[bytes, str]:
    """A trained model as (safetensors bytes of the whole SequenceModel's state_dict, JSON of
    how it was made and how it scored). The safetensors file opens in the Explore page's upload
    (it finds the `rnn.*` tensors) and in plain PyTorch:
    `SequenceModel(ModelSpec(**meta["spec"])).load_state_dict(safetensors.torch.load_file(f))`.

    The safetensors `__metadata__` (strings only, as the format requires; lists and the spec
    as JSON) says what the file is without the JSON beside it: format, task, cell, the
    recurrent module's prefix, the head's kind and output size, the spec, the vocabulary and
    classes, and for a vanilla RNN its nonlinearity, which its weights cannot tell and which
    the upload loader (core.io.loading) honours.
    """
    model = result.model
    task = get_task(result.task)
    weights = safetensors.torch.save(state_tensors(model), metadata=weights_metadata(result))
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


def history_file(result: TrainResult) -> bytes | None:
    """A trained model's snapshots (core.training.snapshots: tensors `snapshots.<step>.<name>`,
    metadata listing the steps and their held-out scores, float32) with the weights file's
    metadata saying what model they are of; None for a run that kept none."""
    if not result.snapshots:
        return None
    return snapshots_file(result.snapshots, weights_metadata(result))


def trained_from_files(weights: bytes, meta_json: str, history: bytes | None = None
                       ) -> TrainResult:
    """The TrainResult that `model_files` wrote (its progress history is not in the files),
    with its snapshots where `history` (`history_file`'s bytes) is given: how a saved search
    trial opens in Explore and Compare. ValueError if the files do not fit."""
    meta = json.loads(meta_json)
    nonlinearity = safetensors_metadata(weights, "the weights").get("nonlinearity", "tanh")
    model = rebuild_sequence_model(meta["spec"], safetensors.torch.load(weights), nonlinearity)
    snapshots = ()
    if history is not None:
        snapshots = read_snapshots(history, "the history file")
        shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
        for snapshot in snapshots:
            if {name: tuple(t.shape) for name, t in snapshot.state.items()} != shapes:
                raise ValueError(f"the history file's snapshot of step {snapshot.step} is not "
                                 "of this model's weights (other names or shapes)")
        last = snapshots[-1] if snapshots else None
        if last is not None and (last.step != int(meta["steps"]) or not all(
                torch.equal(last.state[name], tensor)
                for name, tensor in model.state_dict().items())):
            raise ValueError("the history file is another run's: its last snapshot is not "
                             "these weights")
    return TrainResult(model=model, task=meta["task"], cell=meta["cell"],
                       config=TrainConfig(**meta["config"]), steps=int(meta["steps"]),
                       seconds=float(meta["train_seconds"]), status=meta["status"],
                       message=meta.get("message", ""), score=Score.from_dict(meta["heldout"]),
                       snapshots=snapshots)


def weights_metadata(result: TrainResult) -> dict[str, str]:
    """The safetensors metadata of a trained model's weights file (see model_files)."""
    model, task = result.model, get_task(result.task)
    metadata = {
        "format": "gatescope SequenceModel",
        "task": result.task,
        "cell": result.cell,
        "recurrent_prefix": "rnn",
        "kind": model.spec.kind,
        "head": json.dumps({"kind": model.spec.kind, "output_size": model.spec.output_size}),
        "spec": json.dumps(model.spec.to_dict()),
        "vocab": json.dumps(task.vocab.words if task.vocab is not None else None),
        "classes": json.dumps(list(task.classes) if task.classes else None),
    }
    if result.cell == "rnn":
        metadata["nonlinearity"] = str(getattr(model.rnn, "nonlinearity", "tanh"))
    return metadata


def _finite_json(value):
    """JSON has no NaN or Infinity: a diverged model's infinite loss is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value
