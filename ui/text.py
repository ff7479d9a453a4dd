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

#: Where GitHub-flavoured Markdown would still make a link of escaped text: it finds URLs
#: ("http://", "www.") and e-mail addresses in the text after escapes are read. A zero-width
#: space, written as an entity (the Markdown stays free of invisible characters), breaks each
#: pattern without changing what is shown.
_LINK_STARTS = re.compile(r"(\\:|www(?=\\\.)|(?=\\@))", re.IGNORECASE)
_BREAK = "&#8203;"

#: Every ASCII punctuation character: CommonMark lets a backslash escape each of them, and
#: escaped they are literal text to Markdown and to Streamlit's extensions (math, colours,
#: emoji shortcodes), though not to GFM's links of bare URLs (above).
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")


def visible(text: object) -> str:
    """`text` as a string without control characters and without format characters (bidi
    overrides, zero-width marks), which would reorder or hide what is shown; tabs and line
    breaks stay."""
    return "".join(ch for ch in str(text)
                   if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf"))


def plain(text: object) -> str:
    """Markdown that shows exactly the visible characters of `text` (see `visible`): every ASCII
    punctuation mark backslash-escaped, URLs and e-mail addresses broken by an invisible
    zero-width space so that nothing becomes a link, line breaks kept as line breaks."""
    escaped = _PUNCTUATION.sub(r"\\\1", visible(text))
    escaped = _LINK_STARTS.sub(lambda match: match.group(0) + _BREAK, escaped)
    return "  \n".join(escaped.split("\n"))
