"""Script-only elements that take no space on the page."""

from __future__ import annotations

import streamlit as st


def hidden_html(key: str, body: str) -> None:
    """Draw `body` (a <script>, usually) in a keyed container that the same element hides, so
    that the page's layout has no gap for it. Scripts still run."""
    st.container(key=key).html(
        f"<style>:has(> .st-key-{key}), .st-key-{key} {{ display: none; }}</style>{body}",
        unsafe_allow_javascript=True)


def scroll_to_top(key: str) -> None:
    """Show the page from its top: Streamlit keeps the scroll position of the page it switches
    from (a button low on the Train page opened Explore scrolled to its bottom)."""
    hidden_html(key, """<script>
      const doc = window.parent && window.parent.document ? window.parent.document : document;
      const main = doc.querySelector('[data-testid="stMain"]');
      if (main) { main.scrollTo(0, 0); }
      (doc.scrollingElement || doc.documentElement).scrollTo(0, 0);
    </script>""")


#: Windows narrower than this (CSS px) open with the sidebar folded away.
NARROW_WINDOW_PX = 1280
#: Streamlit folds the sidebar itself in windows up to this wide (its "md" breakpoint).
STREAMLIT_FOLDS_PX = 768


def fold_sidebar_in_narrow_windows() -> None:
    """Open the app with its sidebar folded in a window narrower than NARROW_WINDOW_PX, as
    Streamlit itself does only below 768 px. The sidebar is 300 px wide: at 150% zoom of a
    1280 x 720 projector (853 px) it left the charts 521 px, and the Explore figure's right
    column 127 px for equations 230 px long. Folded, the charts have the window's width (821 px
    there, as at 1280 x 720 with the sidebar open). Once per browser document: a visitor who
    opens the sidebar again keeps it open."""
    hidden_html("gatescope_fold", f"""<script>
      (function () {{
        const win = window.parent && window.parent.document ? window.parent : window;
        const doc = win.document;
        if (doc.__gatescopeFolded) {{ return; }}
        doc.__gatescopeFolded = true;
        const width = win.innerWidth;
        if (width >= {NARROW_WINDOW_PX} || width <= {STREAMLIT_FOLDS_PX}) {{ return; }}
        let tries = 0;
        const fold = () => {{  // the sidebar is drawn by the same run: look for it for 5 s
          const sidebar = doc.querySelector('[data-testid="stSidebar"]');
          const button = doc.querySelector('[data-testid="stSidebarCollapseButton"] button');
          if (sidebar && button) {{
            if (sidebar.getAttribute('data-collapsed') === 'false') {{ button.click(); }}
          }} else if (++tries < 100) {{
            win.setTimeout(fold, 50);
          }}
        }};
        fold();
      }})();
    </script>""")
