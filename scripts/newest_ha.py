"""What a real Home Assistant needs at start, read from the installed release.

`scripts/setup` installs the newest Home Assistant on the package index into
an environment of its own (no test plugin, which pins an older one), for the
live tests. Started with `--skip-pip` and no internet, Home Assistant needs
the packages of the base components it loads at every start; this prints them
as the installed release pins them, one requirement a line:

    .venv-newest/bin/python scripts/newest_ha.py requirements_test.txt

A package whose pinned release has no wheel for this Python takes the version
the given requirements file names instead (so pip never builds it from source).
"""

import json
from pathlib import Path
import re
import sys

import homeassistant.components

# The base components a start loads or imports to describe their services
# (frontend, Assist, text-to-speech, camera and ffmpeg helpers, the base
# platforms infrared and radio_frequency).
LOADED_AT_START = (
    "assist_pipeline",
    "camera",
    "conversation",
    "ffmpeg",
    "frontend",
    "infrared",
    "radio_frequency",
    "tts",
)
# Pinned by Home Assistant to releases without a Python 3.14 wheel.
NO_WHEEL_FOR_THIS_PYTHON = frozenset({"pymicro-vad", "pyspeex-noise"})


def _name(requirement: str) -> str:
    return re.split(r"[=<>!~\[ ;]", requirement, maxsplit=1)[0].strip().lower()


def requirements(fallbacks: dict[str, str]) -> list[str]:
    """Return the base components' requirements, with the fallbacks applied."""
    components = Path(next(iter(homeassistant.components.__path__)))
    wanted: dict[str, str] = {}
    for component in LOADED_AT_START:
        manifest = json.loads((components / component / "manifest.json").read_text())
        for requirement in manifest.get("requirements", []):
            name = _name(requirement)
            if name in NO_WHEEL_FOR_THIS_PYTHON and name in fallbacks:
                wanted[name] = fallbacks[name]
            else:
                wanted[name] = requirement
    return sorted(wanted.values())


def read_requirements(path: Path) -> dict[str, str]:
    """Return a requirements file's pinned requirements by package name."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {_name(line): line for line in lines if "==" in line}


if __name__ == "__main__":
    print("\n".join(requirements(read_requirements(Path(sys.argv[1])))))
