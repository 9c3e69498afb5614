"""The fake API's rate limits, as Telzino might run them (scripts/fake_telzino/ratelimit.py)."""

import aiohttp
import pytest

from custom_components.telzino.api import (
    ClientCredentials,
    TelzinoClient,
    TelzinoRateLimitedError,
)
from scripts.fake_telzino import (
    CLIENT_ID,
    CLIENT_SECRET,
    STATUS,
    FakeTelzino,
    RateLimit,
    Tiers,
)
from tests.common import FakeClock

pytestmark = pytest.mark.ha_free


def admitted(limit: RateLimit | Tiers, times: list[float]) -> list[bool]:
    """Return which of the requests at `times` pass."""
    return [limit.admit(at)[0] for at in times]


def test_a_fixed_window_resets_at_its_boundary() -> None:
    """3 a minute: the 4th in the minute is refused, the next minute starts afresh."""
    limit = RateLimit("fixed_window", 3, 60)
    assert admitted(limit, [0, 10, 20, 30, 59.9, 60, 61]) == [
        True,
        True,
        True,
        False,
        False,
        True,
        True,
    ]
    _, headers = limit.admit(62)
    assert headers == {}  # no header family asked for
    over, headers = limit.admit(63)
    assert (over, headers["Retry-After"]) == (False, "57")


def test_tiers_admit_what_each_admits_and_announce_the_tier_about_to_bind() -> None:
    """2 a second and 3 a minute: the second tier refuses the fourth request of the minute.

    The headers are those of the tier that refused, else of the tightest
    (the minute), as an API announces the tier about to bind.
    """
    tiers = Tiers(
        (
            RateLimit("fixed_window", 2, 1, headers="x-ratelimit"),
            RateLimit("fixed_window", 3, 60, headers="x-ratelimit"),
        )
    )
    assert admitted(tiers, [0, 0, 0, 1, 2, 3, 60]) == [
        True,
        True,
        False,
        True,
        False,
        False,
        True,
    ]
    _, headers = tiers.admit(60.5)
    assert headers["X-RateLimit-Limit"] == "3"
    refused, headers = tiers.admit(60.6)
    assert (refused, headers["X-RateLimit-Limit"]) == (False, "2")


def test_a_sliding_window_frees_a_request_a_window_after_it() -> None:
    """The oldest request of the last window leaves it: one more may go."""
    limit = RateLimit("sliding_window", 2, 60)
    assert admitted(limit, [0, 30, 59, 60.5, 61, 90.5]) == [
        True,
        True,
        False,
        True,
        False,
        True,
    ]
    # The oldest of the window (60.5) leaves it at 120.5: 29.5 s from now.
    over, headers = limit.admit(91)
    assert (over, headers["Retry-After"]) == (False, "30")


def test_a_token_bucket_allows_a_burst_then_its_rate() -> None:
    """10 tokens refilled at 1 a second: a burst of 10, then one a second."""
    limit = RateLimit("token_bucket", 10, 10)
    assert admitted(limit, [0.0] * 11) == [True] * 10 + [False]
    over, headers = limit.admit(0.5)
    assert (over, headers["Retry-After"]) == (False, "1")
    assert admitted(limit, [1.0, 1.1, 2.0]) == [True, False, True]


def test_the_header_families_announce_the_budget() -> None:
    """X-RateLimit-* or the IETF fields; a 429 without Retry-After when so set."""
    x_ratelimit = RateLimit("fixed_window", 2, 60, headers="x-ratelimit")
    assert x_ratelimit.admit(15)[1] == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "1",
        "X-RateLimit-Reset": "45",
    }
    ietf = RateLimit("fixed_window", 2, 60, headers="ietf", retry_after=False)
    ietf.admit(15)
    ietf.admit(16)
    over, headers = ietf.admit(17)
    assert not over
    assert headers == {
        "RateLimit-Policy": '"telzino";q=2;w=60',
        "RateLimit": '"telzino";r=0;t=43',
    }


@pytest.mark.parametrize(
    "settings",
    [
        {"kind": "hourly", "limit": 1, "window": 1},
        {"kind": "fixed_window", "limit": 0, "window": 60},
    ],
)
def test_a_limit_that_cannot_be_kept_is_refused(settings: dict[str, object]) -> None:
    """An unknown kind or a zero limit is an error, not a fake that never answers."""
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit(**settings)  # type: ignore[arg-type]


async def test_every_request_counts_and_the_client_hears_retry_after(
    fake: FakeTelzino,
    fake_url: str,
    session: aiohttp.ClientSession,
    clock: FakeClock,
) -> None:
    """Set over the control API: the token request counts, the 429 carries Retry-After."""
    agent = fake.add_agent("Front desk")
    async with session.post(
        f"{fake_url}/_fake/rate_limit",
        json={"kind": "fixed_window", "limit": 2, "window": 60, "headers": "ietf"},
    ) as response:
        assert response.status == 204
    async with session.post(
        f"{fake_url}/_fake/rate_limit", json={"kind": "daily", "limit": 1, "window": 1}
    ) as response:
        assert response.status == 400
    client = TelzinoClient(
        ClientCredentials(CLIENT_ID, CLIENT_SECRET),
        session=session,
        api_url=fake_url,
        clock=clock,
        request_timeout=2,
    )
    await client.get_registration_status(agent.id)  # a token, then the status
    # The fields said the window's budget is spent: held back, nothing sent.
    with pytest.raises(TelzinoRateLimitedError) as raised:
        await client.get_registration_status(agent.id)
    retry_after = raised.value.retry_after
    assert retry_after is not None
    assert 0 < retry_after <= 60
    assert fake.stats.rate_limited == 0
    assert fake.stats.requests[STATUS] == 1
    assert client.budget.source == "headers"
    assert client.budget.window == 60
    async with session.delete(f"{fake_url}/_fake/rate_limit") as response:
        assert response.status == 204
    clock.advance(retry_after)
    assert (await client.get_registration_status(agent.id)).is_registered


def test_a_limit_from_the_command_line() -> None:
    """`scripts/develop --rate-limit` and the fake's own option read one spec."""
    limit = RateLimit.parse("fixed_window:1000/3600:x-ratelimit:no-retry-after")
    assert (limit.kind, limit.limit, limit.window) == ("fixed_window", 1000, 3600)
    assert (limit.headers, limit.retry_after) == ("x-ratelimit", False)
    assert RateLimit.parse("sliding_window:100/60").headers == "none"
    with pytest.raises(ValueError, match="not a rate limit"):
        RateLimit.parse("hourly:lots")
