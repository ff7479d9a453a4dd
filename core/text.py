"""Names that came from a visitor's file (a CSV column, an uploaded file's name), made safe to
put in a message: visible characters only, on one line, and short.

core/ writes its messages as plain text; the pages still pass them through `ui.text.plain()`
(which escapes Markdown). What this adds is for core's own sake: a 1 MB column name must not go
whole into a message (a browser tab froze on one), and a right-to-left override in a file name
must not reverse the rest of a label, wherever that label goes (captions, downloads, exports).
"""

from __future__ import annotations

import unicodedata

#: How many characters of a name a message shows.
NAME_CHARS = 40


def printable(text: object, limit: int = NAME_CHARS) -> str:
    """`text` without control (Cc) and format (Cf: bidi overrides, zero-width) characters,
    line breaks and tabs as spaces, NFC-normalised, and cut to `limit` characters with "…"."""
    flat = unicodedata.normalize("NFC", str(text).replace("\r\n", " "))
    kept = "".join(" " if ch in "\n\r\t" else ch for ch in flat
                   if ch in "\n\r\t" or unicodedata.category(ch) not in ("Cc", "Cf"))
    kept = kept.strip()
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


def listing(names, limit: int = 10, chars: int = NAME_CHARS) -> str:
    """At most `limit` names, each `printable`, comma-separated, with how many more there are."""
    names = list(names)
    shown = ", ".join(printable(name, chars) for name in names[:limit])
    return shown + (f" and {len(names) - limit:,} more" if len(names) > limit else "")
