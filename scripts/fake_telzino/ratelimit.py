"""Rate limits the fake API can apply, as Telzino might run them.

Telzino documents that its API is rate limited, not how: no numbers, no
headers. These are the common ways: a fixed window, a sliding window or a
token bucket, answering 429 with or without `Retry-After`, and announcing the
budget with the `X-RateLimit-*` headers, the IETF `RateLimit` /
`RateLimit-Policy` fields, or nothing; and several such limits at once.
"""

from collections import deque
from dataclasses import dataclass, field
import math
from typing import Final, Literal

type Kind = Literal["fixed_window", "sliding_window", "token_bucket"]
type Headers = Literal["none", "x-ratelimit", "ietf"]
KINDS: Final[tuple[Kind, ...]] = ("fixed_window", "sliding_window", "token_bucket")
HEADERS: Final[tuple[Headers, ...]] = ("none", "x-ratelimit", "ietf")


@dataclass
class RateLimit:
    """`limit` requests per `window` seconds, counted the way `kind` says."""

    kind: Kind
    limit: int
    window: float
    # Send Retry-After with a 429.
    retry_after: bool = True
    headers: Headers = "none"
    _window_start: float = field(default=-math.inf, repr=False)
    _count: int = field(default=0, repr=False)
    _sent: deque[float] = field(default_factory=deque, repr=False)
    _tokens: float | None = field(default=None, repr=False)
    _refilled_at: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        """Refuse a limit that cannot be kept."""
        if self.kind not in KINDS or self.headers not in HEADERS:
            raise ValueError(f"unknown rate limit {self.kind!r} / {self.headers!r}")
        if self.limit < 1 or self.window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")

    @classmethod
    def parse(cls, spec: str) -> RateLimit:
        """Read `KIND:LIMIT/WINDOW[:HEADERS][:no-retry-after]`, e.g. `sliding_window:100/60`."""
        kind, _, rest = spec.partition(":")
        amount, _, rest = rest.partition(":")
        limit, _, window = amount.partition("/")
        options = rest.split(":") if rest else []
        headers = next((o for o in options if o in HEADERS), "none")
        try:
            return cls(
                kind,  # type: ignore[arg-type]  # checked by __post_init__
                int(limit),
                float(window),
                retry_after="no-retry-after" not in options,
                headers=headers,  # type: ignore[arg-type]
            )
        except ValueError as err:
            raise ValueError(f"not a rate limit: {spec!r} ({err})") from err

    @property
    def rate(self) -> float:
        """Return the requests per second it admits in the long run."""
        return self.limit / self.window

    def admit(self, now: float) -> tuple[bool, dict[str, str]]:
        """Count a request at `now`; return whether it passes, and the headers."""
        remaining, reset = self._take(now)
        allowed = remaining >= 0
        headers = self._budget_headers(max(remaining, 0), reset)
        if not allowed and self.retry_after:
            headers["Retry-After"] = str(max(1, math.ceil(reset)))
        return allowed, headers

    def _take(self, now: float) -> tuple[int, float]:
        """Take one request from the budget; return what remains and when it resets.

        A negative remainder: the request is over the limit (and not counted).
        """
        if self.kind == "fixed_window":
            start = math.floor(now / self.window) * self.window
            if start != self._window_start:
                self._window_start, self._count = start, 0
            reset = start + self.window - now
            if self._count >= self.limit:
                return -1, reset
            self._count += 1
            return self.limit - self._count, reset
        if self.kind == "sliding_window":
            while self._sent and self._sent[0] <= now - self.window:
                self._sent.popleft()
            if len(self._sent) >= self.limit:
                return -1, self._sent[0] + self.window - now
            self._sent.append(now)
            return self.limit - len(self._sent), self._sent[0] + self.window - now
        rate = self.limit / self.window
        tokens = self.limit if self._tokens is None else self._tokens
        tokens = min(self.limit, tokens + (now - self._refilled_at) * rate)
        self._refilled_at = now
        if tokens < 1:
            self._tokens = tokens
            return -1, (1 - tokens) / rate
        self._tokens = tokens - 1
        return math.floor(self._tokens), (self.limit - self._tokens) / rate

    def _budget_headers(self, remaining: int, reset: float) -> dict[str, str]:
        seconds = max(0, math.ceil(reset))
        if self.headers == "x-ratelimit":
            return {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(seconds),
            }
        if self.headers == "ietf":
            window = math.ceil(self.window)
            return {
                "RateLimit-Policy": f'"telzino";q={self.limit};w={window}',
                "RateLimit": f'"telzino";r={remaining};t={seconds}',
            }
        return {}


@dataclass
class Tiers:
    """Several limits at once (say 2 a second and 60 a minute): each must admit.

    A request one tier refuses still counts in the tiers before it. The
    headers are those of the tier that refused, else of the tightest (an API
    announces the tier about to bind).
    """

    tiers: tuple[RateLimit, ...]

    @property
    def rate(self) -> float:
        """Return the requests per second they admit in the long run."""
        return min(tier.rate for tier in self.tiers)

    @property
    def window(self) -> float:
        """Return the longest tier's window, in seconds."""
        return max(tier.window for tier in self.tiers)

    def admit(self, now: float) -> tuple[bool, dict[str, str]]:
        """Count a request at `now` in each tier; return whether all pass, and the headers."""
        tightest = min(self.tiers, key=lambda tier: tier.rate)
        announced: dict[str, str] = {}
        for tier in self.tiers:
            admitted, headers = tier.admit(now)
            if not admitted:
                return False, headers
            if tier is tightest:
                announced = headers
        return True, announced
