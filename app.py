"""gatescope: see inside recurrent neural networks. Run with `streamlit run app.py`.

The entry point only routes: each page lives in app_pages/ and reads like a short story.

Not in a folder named pages/: Streamlit takes one beside the entry point for its old multipage
layout, and then a link straight to a page (/train), as the first request a freshly started
server sees, ran that page file alone, with the files' names in the sidebar instead of these
titles. tests/e2e/test_faithful_browser.py opens such a link on a fresh server.
"""

import time
from pathlib import Path

PAGES = Path(__file__).resolve().parent / "app_pages"
#: The tab's icon, a gate's sigmoid. A file of the app's own: a Material icon as the page icon
#: had every visitor's browser fetch it from fonts.gstatic.com on every rerun, and a classroom
#: without the internet (or a visitor who blocks Google) got none.
ICON = Path(__file__).resolve().parent / "ui" / "icon.svg"


def main() -> None:
    import streamlit as st

    from ui.preload import preload_plotly
    from ui.state import PRELOAD_SENT, THEME_REPORTED

    st.set_page_config(page_title="gatescope", page_icon=ICON, layout="wide")
    # Before anything imports torch (a second and more on a cold start): the browser fetches
    # and compiles the chart code while the server works.
    preload_plotly()
    st.session_state[THEME_REPORTED] = PRELOAD_SENT in st.session_state  # not on the first run
    if PRELOAD_SENT not in st.session_state:
        # Streamlit sends from its event loop, and importing torch holds the GIL for long
        # stretches: on a session's first run, give the loop a moment to send the preload.
        st.session_state[PRELOAD_SENT] = True
        time.sleep(0.05)

    from core.sharing import cap_torch_threads  # imports torch

    # Imported here, by every session before its page, never lazily by a page: plotly checks
    # for pandas in sys.modules while it validates a figure, and a module still being imported
    # by another visitor's thread is there half-made ("partially initialized module 'pandas'
    # has no attribute 'Series'": a Train page's live chart failed so while another visitor
    # opened Compare, in benchmarks/load_test.py --hostile). The import lock makes a second
    # session wait here until the first has finished it.
    import pandas  # noqa: F401
    from ui.animation import guard_animations
    from ui.hidden import fold_sidebar_in_narrow_windows
    from ui.sessions import close_sessions_when_gone
    from ui.tours import present

    # Every visitor's script runs in a thread of its own: one torch thread each, so that a room
    # of visitors shares the cores instead of oversubscribing them (see core/sharing.py).
    cap_torch_threads()
    # A session whose tab is gone for good is closed and its memory given back (ui/sessions.py).
    close_sessions_when_gone()

    # Material icons, not emoji: they render everywhere, also where no emoji font is installed.
    pages = [
        st.Page(PAGES / "explore.py", title="Explore", icon=":material/biotech:", default=True),
        st.Page(PAGES / "compare.py", title="Compare cells", icon=":material/compare:",
                url_path="compare"),
        st.Page(PAGES / "gradient_lab.py", title="Gradient lab", icon=":material/trending_down:",
                url_path="gradient_lab"),
        st.Page(PAGES / "interpret.py", title="Interpretability lab", icon=":material/psychology:",
                url_path="interpret"),
        st.Page(PAGES / "train.py", title="Train", icon=":material/model_training:",
                url_path="train"),
        st.Page(PAGES / "search.py", title="Search", icon=":material/travel_explore:",
                url_path="search"),
        st.Page(PAGES / "tours.py", title="Tours", icon=":material/slideshow:",
                url_path="tours"),
        st.Page(PAGES / "about.py", title="About", icon=":material/info:", url_path="about"),
    ]
    # Before any page draws: charts that play in the browser pause when the user touches a
    # widget (a rerun is coming), and no animation outlives its chart (see ui/animation.py).
    guard_animations()
    fold_sidebar_in_narrow_windows()
    page = st.navigation(pages)
    # Hide flags (hide=sidebar,...) and, on a tour's step, the tour bar above the page.
    present(page)
    page.run()


# Streamlit runs this file as __main__. A training run's child process (core/training/session.py,
# multiprocessing's forkserver) runs the parent's main file again, as __mp_main__: unguarded,
# every training process ran the whole app, bare, before it trained (seconds of CPU each, and
# Streamlit's "missing ScriptRunContext" warnings in the log). Streamlit is imported in main()
# so that such a process does not import it either.
#
# `streamlit run app.py` finds the `st.App` below (by reading this file, not running it) and
# serves it: the same server, plus a start-up hook that imports torch and the other heavy
# libraries while the server waits for its first visitor (ui/startup.py), and a header on every
# page that has the browser fetch the chart's code at once (ui/preload.py). The server imports
# this file once, as the module "app", for that object alone.
if __name__ == "__main__":
    main()
elif __name__ == "app":
    from starlette.middleware import Middleware
    from streamlit import App

    from ui.preload import PreloadChartCode
    from ui.startup import warm_up

    app = App(__file__, lifespan=warm_up, middleware=[Middleware(PreloadChartCode)])
