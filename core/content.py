"""The app's explanations, kept as Markdown files in content/<page>/ and read here.

Each file is one explanation: its first line is `# Title`, the rest is the body. Files are shown
in the order of their names (`10_maps.md` before `20_gradient.md`). Shorter text that a page
places itself (a caption under a chart) lives in content/<page>/captions/<name>.md, untitled. A body may name values the
page fills in as `$name` (string.Template: Markdown's own braces, as in h_{t−1}, stay as they
are); a value the page does not give is an error, not a silent "$name" on screen.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from string import Template

CONTENT_DIR = Path(__file__).resolve().parents[1] / "content"


@dataclass(frozen=True)
class Explanation:
    name: str  # the file's stem, e.g. "10_maps"
    title: str
    body: str  # Markdown, with $placeholders

    def filled(self, **values) -> str:
        return Template(self.body).substitute(values)


@functools.cache
def explanations(page: str) -> tuple[Explanation, ...]:
    """Every explanation of a page, in file-name order."""
    found = []
    for path in sorted((CONTENT_DIR / page).glob("*.md")):
        first, _, body = path.read_text(encoding="utf-8").partition("\n")
        if not first.startswith("# "):
            raise ValueError(f"{path} must start with a '# Title' line")
        found.append(Explanation(path.stem, first[2:].strip(), body.strip()))
    return tuple(found)


def explanation(page: str, name: str) -> Explanation:
    """One explanation by its file's stem without the order prefix ("maps" for 10_maps.md)."""
    for item in explanations(page):
        if item.name.split("_", 1)[-1] == name:
            return item
    raise KeyError(f"no explanation {name!r} in content/{page}/")


@functools.cache
def _caption_template(page: str, name: str) -> Template:
    return Template((CONTENT_DIR / page / "captions" / f"{name}.md").read_text(encoding="utf-8")
                    .strip())


def caption(page: str, name: str, **values) -> str:
    """The caption content/<page>/captions/<name>.md with its $placeholders filled."""
    return _caption_template(page, name).substitute(values)
