"""The API server's clock, as the `Date` headers of its answers show it.

Telzino stamps `lastRegisterSent` and `expires` on its own clock. This host's
clock may be off (a host without network time after a reboot, a resumed
virtual machine), so those times are compared on the server's clock, or moved
onto this host's by the offset measured here.
"""

from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
import statistics
from typing import Final

# The offset is the median of this many recent answers: one slow answer, or
# one proxy with a clock of its own, does not move it.
SAMPLES: Final = 15
# A `Date` header has whole seconds: the moment it names lies on average half
# a second after it.
DATE_RESOLUTION: Final = 1.0
# The offset in use is whole seconds (the API's times are), and moves only
# when the estimate leaves it by more than this: the times moved by it do not
# jitter from one answer to the next, and clocks that agree give exactly 0.
TOLERANCE: Final = 1.0


class ServerClock:
    """How far the API server's clock is ahead of this host's (behind: negative)."""

    def __init__(self) -> None:
        """Know nothing until an answer with a `Date` header."""
        self._samples: deque[float] = deque(maxlen=SAMPLES)
        self._header: str | None = None
        self._header_time = 0.0
        self._offset: float | None = None
        self._new_samples = False

    def record(self, date: str | None, sent: float, received: float) -> None:
        """Learn from one answer: its `Date` header, and when it was asked and came.

        `sent` and `received` are this host's wall-clock times (Unix seconds);
        the server wrote its `Date` about halfway between them.
        """
        if date is None:
            return
        if date != self._header:
            # Answers within one second share the header: parsed once.
            if (when := parse_http_date(date)) is None:
                return
            self._header, self._header_time = date, when.timestamp()
        self._samples.append(
            self._header_time + DATE_RESOLUTION / 2 - (sent + received) / 2
        )
        self._new_samples = True

    @property
    def offset(self) -> float:
        """Seconds the server's clock is ahead of this host's; 0 until known."""
        if self._new_samples:
            # Worked out when asked (once a poll), not at every answer.
            self._new_samples = False
            estimate = statistics.median(self._samples)
            if self._offset is None or abs(estimate - self._offset) > TOLERANCE:
                self._offset = float(round(estimate))
        return 0.0 if self._offset is None else self._offset

    @property
    def known(self) -> bool:
        """Whether an answer has shown the server's clock yet."""
        return bool(self._samples)


def answered_at(headers: Mapping[str, str]) -> datetime | None:
    """Return the time an answer's `Date` names, on the server's clock (None: none)."""
    date = headers.get("Date")
    return None if date is None else parse_http_date(date)


def parse_http_date(value: str) -> datetime | None:
    """Return the time an HTTP-date names (None: not one); without a zone, UTC."""
    try:
        when = parsedate_to_datetime(value)
    except TypeError, ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
