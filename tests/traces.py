"""The traces recorded from the real OpenSIPS registrant (tests/opensips/).

Made by scripts/opensips/ (lab.py records, extract.py writes the trace; on
OpenSIPS 3.x, which raises no registrant events, the states are derived from
the SIP messages: the header's `events` says so); the
model's replay (test_registrant.py) and the integration's
(test_opensips_replay.py) read them here. One JSON object a line: a header,
then actions, state events and reg_list changes, times from the start.
"""

from collections.abc import Iterator
from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any, Literal

TRACES = sorted((Path(__file__).parent / "opensips").glob("*.jsonl"))


@dataclass
class Trace:
    """A recorded scenario: its header and its lines (times from its start)."""

    name: str
    header: dict[str, Any]
    lines: list[dict[str, Any]]

    @property
    def t0(self) -> float:
        """The start, as a Unix time: OpenSIPS counts whole seconds of it."""
        t0: float = self.header["t0"]
        return t0

    def of(self, reg: str) -> Iterator[dict[str, Any]]:
        """Return the lines of one registration."""
        return (line for line in self.lines if line.get("reg") == reg)

    @property
    def release(self) -> Literal["4.x", "3.x"]:
        """The OpenSIPS release line the trace was recorded on."""
        return "3.x" if self.header["opensips"].startswith("3.") else "4.x"

    @property
    def end(self) -> float:
        """When the recording ends."""
        return self.lines[-1]["t"]


def load(path: Path) -> Trace:
    """Read a trace file."""
    header, *lines = (json.loads(line) for line in path.read_text().splitlines())
    return Trace(path.stem, header, lines)


# Events of one request within this of each other are ordered as the protocol
# orders them (the module's processes stamp them a few microseconds apart).
SAME_MOMENT = 0.005
ORDER = {
    "REGISTERING": 0,
    "UNREGISTERING": 0,
    "AUTHENTICATING": 1,
    "AUTHENTICATING_UNREGISTER": 1,
}


def real_events(trace: Trace, reg: str) -> list[tuple[float, str]]:
    """Return a registration's recorded state changes, in protocol order."""
    events = [(line["t"], line["state"]) for line in trace.of(reg) if "state" in line]
    events.sort(
        key=lambda event: (round(event[0] / SAME_MOMENT), ORDER.get(event[1], 2))
    )
    return events
