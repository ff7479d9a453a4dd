"""What a public deployment relies on: the Community Cloud dependency file matches the local
one (with CPU-only torch), and .streamlit/config.toml has the settings a public app needs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from core.limits import LIMITS

ROOT = Path(__file__).resolve().parents[1]


def requirement_pins() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, extras) of every line of requirements.txt ("psycopg[binary]==3.3.9")."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, extras, version = re.fullmatch(
                r"([A-Za-z0-9_.-]+)(?:\[([a-z0-9,_-]+)\])?==(\S+)", line).groups()
            pins[name.lower()] = version, extras.split(",") if extras else []
    return pins


def test_the_pipfile_pins_what_requirements_pins_with_torch_from_the_cpu_index():
    pipfile = tomllib.loads((ROOT / "Pipfile").read_text())
    packages = {name.lower(): spec for name, spec in pipfile["packages"].items()}
    assert set(packages) == set(requirement_pins())
    for name, (version, extras) in requirement_pins().items():
        spec = packages[name]
        assert (spec["version"] if isinstance(spec, dict) else spec) == f"=={version}", name
        assert (spec.get("extras", []) if isinstance(spec, dict) else []) == extras, name
    sources = {s["name"]: s["url"] for s in pipfile["source"]}
    assert sources[packages["torch"]["index"]] == "https://download.pytorch.org/whl/cpu"
    assert pipfile["requires"]["python_version"] == "3.11"


def test_the_config_suits_a_public_deployment():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"  # no tracebacks for visitors
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["maxUploadSize"] * 2**20 == LIMITS.max_upload_bytes
    # Streamlit's file watcher walks torch's modules and fails on torch.classes at start-up
    assert config["server"]["fileWatcherType"] == "none"
    # a full garbage collection after every script run (~150 ms with the GIL held) stalls a
    # server whose visitors' pages poll
    assert config["runner"]["postScriptGC"] is False
