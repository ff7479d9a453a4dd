"""Guided tours and focused views, without Streamlit: the tour file format, its checks, links.

A tour is a YAML file (content/tours/<order>_<name>.yaml for the shipped ones, or a teacher's
upload; the format is documented in content/tours/FORMAT.md): a title, a description and an
ordered list of steps, each a page and that page's URL state, a title, narration shown on
screen (Markdown) and speaker notes.

    tour = parse_tour(text, "my-tour")         # TourError lists every problem, step by step
    query = tour.link(3, hide={"sidebar"})     # step 3's page state + tour, step and hide
    page = PAGES[tour.steps[2].page]           # where that link goes (its url_path)

"Its link reproduces its view": a step's state is checked against the page's own `PageState`
(core/views/*.py); every value must come back from `from_query` as it was written, never dropped
or changed by the page's rules, so the page publishes exactly the step's state once it opens.

Focused views (TensorFlow Playground's hide flags): `hide=sidebar,downloads` in any page's URL
hides those parts; `HIDE_PARTS` names them. `PRESENTATION_PARAMS` are the URL parameters that
belong to the tour and the focused view, not to the page: a page keeps them when it writes its
own state into the URL.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

TOURS_DIR = Path(__file__).resolve().parents[1] / "content" / "tours"

#: URL parameters of the presentation, kept beside any page's own (ui/state.py keeps them).
PRESENTATION_PARAMS = ("tour", "step", "hide", "present")

#: What `hide=` can hide, and what each is (FORMAT.md documents the same list; a test holds it).
HIDE_PARTS = {
    "sidebar": "the whole sidebar: the page's choices and the page list",
    "nav": "only the page list in the sidebar (the choices stay)",
    "toolbar": "Streamlit's menu and status at the top right",
    "downloads": "every download button",
    "explanations": "the explanations under the figures",
    "notes": "the speaker notes of a tour step",
}

MAX_STEPS = 30
MAX_FILE_BYTES = 64 * 1024
MAX_CHARS = {"title": 100, "description": 600, "step title": 100, "narration": 900,
             "notes": 4000}
TOUR_FIELDS = ("title", "description", "steps")
STEP_FIELDS = ("page", "state", "title", "narration", "notes", "claims")
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,59}")


@dataclass(frozen=True)
class TourPage:
    """A page a step can show: its name in a tour file, its title, its URL path (as app.py
    registers it), its state class ("module:Class", imported only when a tour names the page:
    the Search page's pulls in Optuna) and the choices whose values only one browser session
    has (a model trained or uploaded there), which no link can carry: `None` for any value
    but the default."""

    name: str
    title: str
    url_path: str
    state_path: str | None
    session_only: Mapping[str, frozenset[str] | None] = field(default_factory=dict)

    def state_class(self):
        """The page's PageState class, or None for a page without choices (About)."""
        if self.state_path is None:
            return None
        module, _, name = self.state_path.partition(":")
        return getattr(importlib.import_module(module), name)


_SESSION_MODELS = frozenset({"session", "upload"})
PAGES: dict[str, TourPage] = {page.name: page for page in (
    TourPage("explore", "Explore", "", "core.views.explore:ExploreState",
             {"source": _SESSION_MODELS}),
    TourPage("compare", "Compare cells", "compare", "core.views.compare:CompareState",
             {"rnn": None, "lstm": None, "gru": None}),
    TourPage("gradient_lab", "Gradient lab", "gradient_lab", "core.views.lab:LabState"),
    TourPage("interpret", "Interpretability lab", "interpret",
             "core.views.interpret:InterpretState", {"source": _SESSION_MODELS}),
    TourPage("train", "Train", "train", "core.views.train:TrainState"),
    TourPage("search", "Search", "search", "core.views.search:SearchState"),
    TourPage("about", "About", "about", None),
)}


class TourError(ValueError):
    """A tour file that cannot be presented; `problems` names each one, step and field."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Step:
    page: str  # a key of PAGES
    state: dict[str, str]  # the page's URL state, as the page itself writes it
    title: str
    narration: str  # Markdown
    notes: str  # speaker notes, Markdown
    claims: tuple[str, ...] = ()  # the lessons (content/claims.toml) its narration states


@dataclass(frozen=True)
class Tour:
    name: str  # its `tour=` in links
    title: str
    description: str
    steps: tuple[Step, ...]

    def link(self, number: int, hide: Iterable[str] = ()) -> dict[str, str]:
        """The URL query of step `number` (from 1): the page's state, the tour and the step,
        and the hide flags, if any."""
        query = {**self.steps[number - 1].state, "tour": self.name, "step": str(number)}
        if flags := hide_param(hide):
            query["hide"] = flags
        return query


# --- the file -----------------------------------------------------------------------------------

def parse_tour(data: bytes | str, name: str) -> Tour:
    """The tour that `data` (a YAML file's bytes or text) describes, named `name`; TourError
    with every problem found, each naming its step and field, when it cannot be presented."""
    if not NAME.fullmatch(name):
        raise TourError([f"“{name}” cannot name a tour: use 1-60 lowercase letters, digits, "
                         "“-” or “_”, starting with a letter or digit."])
    document = _read_yaml(data)
    if not isinstance(document, dict):
        raise TourError(["The file must be a mapping with title, description and steps "
                         f"(it holds {_kind(document)}); see the format's example."])
    problems = _unknown_fields(document, TOUR_FIELDS, "The tour")
    title = _text(document, "title", MAX_CHARS["title"], "The tour", problems)
    description = _text(document, "description", MAX_CHARS["description"], "The tour",
                        problems, required=False)
    raw_steps = document.get("steps")
    steps: list[Step] = []
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append("The tour, field “steps”: a list of at least one step is needed "
                        f"(found {_kind(raw_steps)}).")
    elif len(raw_steps) > MAX_STEPS:
        problems.append(f"The tour, field “steps”: {len(raw_steps)} steps, at most {MAX_STEPS} "
                        "(split it into two tours).")
    else:
        for number, raw in enumerate(raw_steps, start=1):
            step = _step(raw, number, problems)
            if step is not None:
                steps.append(step)
    if problems:
        raise TourError(problems)
    return Tour(name, title, description, tuple(steps))


def _read_yaml(data: bytes | str) -> Any:
    if isinstance(data, bytes):
        if len(data) > MAX_FILE_BYTES:
            raise TourError([f"The file is {len(data) / 1024:.0f} KiB; a tour file may have "
                             f"at most {MAX_FILE_BYTES // 1024} KiB."])
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise TourError([f"The file is not UTF-8 text (byte {error.start} cannot be "
                             "read): save it as UTF-8."]) from None
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = getattr(error, "problem", None) or "not valid YAML"
        raise TourError([f"The file is not valid YAML ({where}{what})."]) from None


def _step(raw: Any, number: int, problems: list[str]) -> Step | None:
    where = f"Step {number}"
    if not isinstance(raw, dict):
        problems.append(f"{where}: a step must be a mapping with page, state, title, "
                        f"narration and notes (found {_kind(raw)}).")
        return None
    count = len(problems)
    title = _text(raw, "title", MAX_CHARS["step title"], where, problems)
    if title:
        where = f"Step {number} (“{title}”)"
    problems.extend(_unknown_fields(raw, STEP_FIELDS, where))
    narration = _text(raw, "narration", MAX_CHARS["narration"], where, problems)
    notes = _text(raw, "notes", MAX_CHARS["notes"], where, problems, required=False)
    page_name = raw.get("page")
    page = PAGES.get(page_name) if isinstance(page_name, str) else None
    if page is None:
        problems.append(f"{where}, field “page”: {_shown(page_name)} is not a page; the pages "
                        f"are {', '.join(PAGES)}.")
        return None
    state = _state(page, raw.get("state", {}), where, problems)
    claims = _claims(raw.get("claims"), where, problems)
    if len(problems) > count:
        return None
    return Step(page.name, state, title, narration, notes, claims)


def _claims(raw: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    """The keys of the lessons a step states: each must be in the catalogue (core/claims.py)."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(key, str) for key in raw):
        problems.append(f"{where}, field “claims”: a list of lesson names is needed (found "
                        f"{_kind(raw)}).")
        return ()
    from core.claims import catalogue  # reads content/claims.toml; imported only when asked

    known = catalogue()
    for key in raw:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean “{near[0]}”?)" if near else ""
            problems.append(f"{where}, field “claims”: {_shown(key)} is not a lesson in "
                            f"content/claims.toml{hint}.")
    return tuple(raw)


def _state(page: TourPage, raw: Any, where: str, problems: list[str]) -> dict[str, str]:
    """The step's state as the page writes it in its URL; a problem for every value the page
    does not have, would drop, or would change."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{where}, field “state”: a mapping of the page's URL parameters is "
                        f"needed (found {_kind(raw)}).")
        return {}
    cls = page.state_class()
    if cls is None:
        if raw:
            problems.append(f"{where}, field “state”: the {page.title} page has no choices, so "
                            "its state must be empty.")
        return {}
    choices = {f.name: f for f in fields(cls)}
    texts, parsed = {}, {}
    for key, value in raw.items():
        at = f"{where}, field “state.{key}”"
        if key in PRESENTATION_PARAMS:
            problems.append(f"{at}: “{key}” is set by the tour itself, not by a step.")
        elif key not in choices:
            near = difflib.get_close_matches(str(key), choices, n=1)
            hint = f" (did you mean “{near[0]}”?)" if near else ""
            problems.append(f"{at}: the {page.title} page has no choice “{key}”{hint}; its "
                            f"choices are {', '.join(choices)}.")
        elif (text := _value_text(value)) is None:
            problems.append(f"{at}: one value is needed (found {_kind(value)}).")
        elif (value_read := choices[key].metadata["parse"](text)) is None:
            default = getattr(cls.defaults(), key)
            problems.append(f"{at}: the {page.title} page does not take “{text}”; it would "
                            f"drop it and show its default, “{_written(choices[key], default)}”.")
        else:
            texts[key], parsed[key] = text, value_read
    typed = cls.from_query(texts)
    for key, wanted in parsed.items():
        shown = getattr(typed, key)
        if shown != wanted:
            default = " (its default: leave the value out if that is what you mean)" \
                if shown == getattr(cls(), key) else ""
            problems.append(f"{where}, field “state.{key}”: given the step's other choices, the "
                            f"{page.title} page would not keep “{texts[key]}”; it would show "
                            f"{_shown(_written(choices[key], shown))}{default}.")
        elif key in page.session_only and _session_only(page.session_only[key], shown,
                                                         getattr(cls(), key)):
            problems.append(f"{where}, field “state.{key}”: “{texts[key]}” names a model that "
                            "only one browser session has (trained or uploaded there); a tour "
                            "can show the shipped models or random ones.")
    return typed.to_query()


def _session_only(values: frozenset[str] | None, shown: Any, default: Any) -> bool:
    return shown != default if values is None else shown in values


def _unknown_fields(raw: dict, known: tuple[str, ...], where: str) -> list[str]:
    problems = []
    for key in raw:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean “{near[0]}”? " if near else ""
            problems.append(f"{where}, field “{key}”: not a field of the format ({hint}the "
                            f"fields are {', '.join(known)}).")
    return problems


def _text(raw: dict, key: str, limit: int, where: str, problems: list[str],
          required: bool = True) -> str:
    value = raw.get(key)
    if value is None:
        if required:
            problems.append(f"{where}, field “{key}”: missing (it is required).")
        return ""
    if not isinstance(value, str):
        problems.append(f"{where}, field “{key}”: text is needed (found {_kind(value)}).")
        return ""
    value = value.strip()
    if required and not value:
        problems.append(f"{where}, field “{key}”: empty (it is required).")
    elif len(value) > limit:
        problems.append(f"{where}, field “{key}”: {len(value)} characters, at most {limit}.")
    return value


def _value_text(value: Any) -> str | None:
    """A state value as URL text: YAML's numbers and yes/no become what a link would carry."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float, str)):
        return str(value)
    return None


def _written(f, value: Any) -> str:
    return f.metadata["write"](value)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"the text {_shown(value)}"
    kinds = {list: "a list", dict: "a mapping", bool: "yes/no", int: "a number",
             float: "a number"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def _shown(value: Any) -> str:
    text = str(value)
    if value is None or text == "":
        return "nothing"
    return f"“{text[:40]}{'…' if len(text) > 40 else ''}”"


# --- the shipped tours, steps and hide flags ------------------------------------------------------

@functools.cache
def shipped_tours() -> dict[str, Tour]:
    """content/tours/<order>_<name>.yaml, in file-name order, by name; TourError (naming the
    file) if one cannot be presented."""
    tours = {}
    for path in sorted(TOURS_DIR.glob("*.yaml")):
        name = path.stem.split("_", 1)[-1]
        try:
            tours[name] = parse_tour(path.read_bytes(), name)
        except TourError as error:
            raise TourError([f"{path.name}: {p}" for p in error.problems]) from None
    return tours


def step_number(raw: str | None, tour: Tour) -> int | None:
    """Step `raw` of `tour` (from 1), or None when it is no step of it."""
    try:
        number = int(str(raw).strip())
    except ValueError:
        return None
    return number if 1 <= number <= len(tour.steps) else None


def hide_flags(raw: str | None) -> tuple[frozenset[str], list[str]]:
    """The parts `hide=` names (comma-separated, any case) and the words it has that name no
    part."""
    words = [w.strip().lower() for w in (raw or "").split(",") if w.strip()]
    return (frozenset(w for w in words if w in HIDE_PARTS),
            [w for w in words if w not in HIDE_PARTS])


def hide_param(parts: Iterable[str]) -> str:
    """`hide=`'s value for `parts`, in HIDE_PARTS's order ("" for none)."""
    wanted = set(parts)
    return ",".join(part for part in HIDE_PARTS if part in wanted)


def upload_name(file_name: str) -> str:
    """The `tour=` name of an uploaded file: "my-" and its file name's stem, made safe."""
    stem = re.sub(r"[^a-z0-9_-]+", "-", Path(file_name).stem.lower()).strip("-_")
    return f"my-{stem[:50] or 'tour'}"
