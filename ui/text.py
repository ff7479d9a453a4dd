"""Text from a visitor, shown as the very characters they gave, never as Markdown.

Streamlit renders Markdown in every alert, caption, metric label and `st.markdown`: a column
name, a file name or a word from a shared link that reaches one of them unescaped can draw an
image from anywhere (`![](https://...)`, which the visitor's browser fetches), a link
(`[log in](https://...)`, or a bare URL, which GitHub-flavoured Markdown links by itself),
LaTeX (`$...$`), coloured text (`:red[...]`) or a heading. So every piece of text that a
visitor could have written goes through `plain()` before it is shown, and core/ writes its
messages as plain text, never as Markdown.
"""

from __future__ import annotations

import re
import string
import unicodedata

#: Every ASCII punctuation character: CommonMark lets a backslash escape each of them, and
#: escaped they are literal text to every extension Streamlit adds (math, colours, emoji
#: shortcodes, directives, autolinked URLs).
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")


def visible(text: object) -> str:
    """`text` as a string without control characters and without format characters (bidi
    overrides, zero-width marks), which would reorder or hide what is shown; tabs and line
    breaks stay."""
    return "".join(ch for ch in str(text)
                   if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf"))


def plain(text: object) -> str:
    """Markdown that shows exactly the visible characters of `text` (see `visible`): every ASCII
    punctuation mark backslash-escaped, line breaks kept as line breaks."""
    escaped = _PUNCTUATION.sub(r"\\\1", visible(text))
    return "  \n".join(escaped.split("\n"))
