"""ui/text.py: what a visitor wrote is shown as the characters they wrote (issue 19, item 7).
The real browser's side of it is tests/e2e/test_injection_browser.py."""

from __future__ import annotations

import string

from hypothesis import given, strategies as st

from pagetest import shown
from ui.text import plain, visible


@given(st.text())
def test_what_plain_markdown_shows_is_the_visible_text(text):
    assert shown(plain(text)) == visible(text)


@given(st.text(alphabet=string.printable))
def test_no_markdown_character_is_left_unescaped(text):
    markdown = plain(text).replace("&#8203;", "").replace("  \n", "")
    unescaped = markdown.replace("\\\\", "")
    for mark in set(string.punctuation) - {"\\"}:
        assert all(i > 0 and unescaped[i - 1] == "\\"
                   for i, ch in enumerate(unescaped) if ch == mark), (mark, markdown)


def test_urls_and_addresses_are_broken_so_nothing_links():
    markdown = plain("http://evil.example www.evil.example me@evil.example")
    assert "http\\:&#8203;" in markdown and "www&#8203;\\." in markdown
    assert "me&#8203;\\@" in markdown


def test_bidi_overrides_and_control_characters_are_dropped_line_breaks_kept():
    assert visible("a\u202egnp.exe\x00\x1b[31m\nb\tc\u200b") == "agnp.exe[31m\nb\tc"
    assert plain("one\ntwo") == "one  \ntwo"
