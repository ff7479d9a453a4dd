"""Page state in the URL: one declarative table per page, one generic (de)serialiser.

Every page's choices are one frozen dataclass (`PageState`); each field says how it reads from a
URL parameter with one of the small field makers below (`one_of`, `whole`, `free_text`,
`number_of`, `matching`, `yes_no`). One generic `from_query` / `to_query` pair does the rest, for every page alike:

- a value that does not parse, is out of range or not offered is dropped (its default stays):
  a link can never break a page;
- defaults are left out of the URL, so links stay short;
- `normalised()` is each page's one hook for rules between fields (a length within the task's
  range, say).

    @dataclass(frozen=True)
    class ExploreState(PageState):
        task: str = one_of("agreement", TASKS)
        sample: int = whole(0, 0, MAX_SEED)

    state = ExploreState.from_query({"task": "adding", "sample": "abc"})   # sample stays 0
    state.to_query()                                                        # {"task": "adding"}

The idea is TensorFlow Playground's `state.ts` (a table of properties and one serialiser). No
Streamlit here: ui/state.py binds a page's state to `st.query_params` and the session.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Iterable, Mapping, TypeVar

Parser = Callable[[str], Any]  # raw URL text -> value, or None when the text is not valid
State = TypeVar("State", bound="PageState")


def _field(default: Any, parse: Parser, write: Callable[[Any], str] = str):
    return field(default=default, metadata={"parse": parse, "write": write})


def one_of(default: str, options: Iterable[str], aliases: Mapping[str, str] | None = None):
    """One of `options` (matched case-insensitively); `aliases` map older spellings in links
    that are already out there to today's option."""
    by_folded = {str(o).lower(): o for o in options}
    by_folded.update({k.lower(): v for k, v in (aliases or {}).items()})
    return _field(default, lambda raw: by_folded.get(raw.strip().lower()))


def whole(default: int, low: int, high: int):
    """A whole number in [low, high] ("12", also "12.0"; never "inf", "nan" or "1e400")."""
    def parse(raw: str) -> int | None:
        try:
            value = float(raw)
        except ValueError:
            return None
        if not math.isfinite(value) or not value.is_integer() or not low <= value <= high:
            return None
        return int(value)
    return _field(default, parse)


def number_of(default: float, options: Iterable[float]):
    """One of a fixed set of numbers (a select slider's stops), written short ("0.001"). The
    option itself comes back, so whole-number options stay ints ("64" and "64.0" give 64)."""
    offered = tuple(options)

    def parse(raw: str) -> float | None:
        try:
            value = float(raw)
        except ValueError:
            return None
        return next((o for o in offered if math.isclose(o, value, rel_tol=1e-9)), None)
    return _field(default, parse, write=lambda v: f"{v:g}")


def free_text(default: str, max_chars: int):
    """Free text of at most `max_chars` characters (longer is dropped, not cut)."""
    return _field(default, lambda raw: raw if len(raw) <= max_chars else None)


def matching(default: str, pattern: "re.Pattern[str]"):
    """Text that `pattern` matches whole (a study's name, say); anything else is dropped."""
    return _field(default, lambda raw: raw if pattern.fullmatch(raw) else None)


def yes_no(default: bool):
    """A yes/no choice, written 1 or 0."""
    values = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    return _field(default, lambda raw: values.get(raw.strip().lower()),
                  write=lambda v: "1" if v else "0")


@dataclass(frozen=True)
class PageState:
    """Base of every page's state: parse from and write to URL query parameters."""

    @classmethod
    def from_query(cls: type[State], params: Mapping[str, Any]) -> State:
        """The state a link asks for; anything invalid keeps its default."""
        updates = {}
        for f in fields(cls):
            raw = params.get(f.name)
            if isinstance(raw, (list, tuple)):
                raw = raw[-1] if raw else None
            if raw is None:
                continue
            value = f.metadata["parse"](str(raw))
            if value is not None:
                updates[f.name] = value
        return replace(cls.defaults(), **updates).normalised()

    @classmethod
    def defaults(cls: type[State]) -> State:
        """The state with no choices made (a page may pick a different landing view)."""
        return cls()

    def to_query(self) -> dict[str, str]:
        """Only the choices that differ from the defaults, so links stay short."""
        default = type(self)()
        return {f.name: f.metadata["write"](getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    def normalised(self: State) -> State:
        """Rules between fields; the identity unless a page says otherwise."""
        return self

    def updated(self: State, values: Mapping[str, Any]) -> State:
        """This state with `values` (a page's widget values) in, normalised."""
        names = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in values.items() if k in names}).normalised()

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

