"""The house rules, checked: core/ needs no Streamlit and each of its modules can be imported
first, one vocabulary per thing, short pages, explanations as content files, and the two
re-exports that scripts rely on."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from core.content import CONTENT_DIR, explanations

ROOT = Path(__file__).resolve().parents[1]
CORE = sorted((ROOT / "core").rglob("*.py"))
PAGES = sorted((ROOT / "app_pages").glob("*.py"))
UI = sorted((ROOT / "ui").glob("*.py"))
MAX_PAGE_LINES = 150


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def code_only(path: Path) -> str:
    """The file's code with its comments and docstrings left out (prose may name a gate)."""
    source = path.read_text()
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node):
            first = node.body[0]
            for number in range(first.lineno, first.end_lineno + 1):
                lines[number - 1] = ""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, column = token.start
            lines[row - 1] = lines[row - 1][:column]
    return "\n".join(lines)


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_never_imports_streamlit_and_says_what_it_owns(path):
    assert not any(m == "streamlit" or m.startswith("streamlit.") for m in imported_modules(path))
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path} has no module docstring"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_are_short_stories(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_PAGE_LINES, f"{path.name} has {lines} lines"
    assert ast.get_docstring(ast.parse(path.read_text()))


def test_session_state_keys_are_named_once_in_ui_state():
    """Every "gatescope.<page>.<what>" key is made by ui.state (page_key or a constant)."""
    for path in PAGES + UI + [ROOT / "app.py"]:
        if path.name == "state.py":
            continue
        found = re.findall(r"[\"']gatescope\.[a-z_.]+[\"']", path.read_text())
        assert not found, f"{path.name} spells session keys itself: {found}"


@pytest.mark.parametrize("word", ["RNN (vanilla)", "forget gate f", "update gate z",
                                  '"rnn": "#', '"lstm": nn.LSTM', '"gru": ("reset"',
                                  "W<sub>hh</sub>h<sub>t−1</sub>"])
def test_the_cell_vocabulary_is_written_once(word):
    """Cell names, gate labels, colours, modules and equations live in core/cells.py only."""
    owners = [p for p in CORE + PAGES + UI if word in code_only(p)]
    assert [p.relative_to(ROOT).as_posix() for p in owners] in ([], ["core/cells.py"])


def test_explanations_are_content_files_with_titles():
    pages = sorted(p.name for p in CONTENT_DIR.iterdir() if p.is_dir())
    assert {"about", "compare", "explore"} <= set(pages)
    for page in pages:
        items = explanations(page)
        assert items, f"content/{page}/ is empty"
        assert all(item.title and item.body for item in items)


def test_an_explanation_missing_a_value_fails_loudly():
    parameters = next(e for e in explanations("compare") if "$input_size" in e.body)
    with pytest.raises(KeyError):
        parameters.filled()
    text = parameters.filled(input_size=2, hidden_size=64, rnn="1", gru="3", lstm="4")
    assert "$" not in text and "I = 2, H = 64" in text


def test_scripts_keep_their_imports():
    from core.trace import Trace, trace
    from core.zoo import load_model, load_user_weights

    from core.engine import tracing
    from core.io import loading
    from core.training import zoo

    assert trace is tracing.trace and Trace is tracing.Trace
    assert load_model is zoo.load_model and load_user_weights is loading.load_user_weights


# Each core module imported first, as a practitioner's script might (`from core.io.sequences
# import ...`): a cycle between two packages only fails for the module that starts it (here
# core.io.sequences -> core.tasks -> core.tasks.charlm -> core.io.sequences once did). In a
# fresh interpreter, with our modules dropped before each, so that torch is imported once.
IMPORT_EACH_FIRST = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "core" or m.startswith("core.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as error:
        failed.append(f"{name}: {error!r}")
print("\\n".join(failed))
"""


def test_every_core_module_can_be_imported_first():
    names = [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
             for p in CORE]
    run = subprocess.run([sys.executable, "-c", IMPORT_EACH_FIRST, *names], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "", run.stdout
    assert len(names) > 50


def test_the_about_page_states_the_conventions_from_the_registry():
    from streamlit.testing.v1 import AppTest

    from core.cells import CELLS

    at = AppTest.from_file(str(ROOT / "app_pages" / "about.py"), default_timeout=30).run()
    assert not at.exception
    text = "\n".join(m.value for m in at.markdown)
    assert "*forget* f" in text and "*update* z" in text and "$" not in text
    for cell in CELLS.values():
        for gate in cell.gates:
            assert f"{gate.label}: {gate.meaning}" in text
