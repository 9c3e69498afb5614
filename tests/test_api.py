"""Tests of the Telzino client against the fake API over loopback HTTP."""

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
import time
from typing import Any

import aiohttp
import pytest

from custom_components.telzino.api import (
    AccessToken,
    Agent,
    ClientCredentials,
    RegistrationState,
    RegistrationStatus,
    ServerClock,
    TelzinoAuthenticationError,
    TelzinoClient,
    TelzinoConnectionError,
    TelzinoError,
    TelzinoForbiddenError,
    TelzinoInvalidAgentIdError,
    TelzinoInvalidInputError,
    TelzinoInvalidResponseError,
    TelzinoInvalidUrlError,
    TelzinoNotFoundError,
    TelzinoRateLimitedError,
    TelzinoRequestError,
    client as api_client,
    parse_retry_after,
    validate_agent_id,
    validate_api_url,
)
from scripts.fake_telzino import (
    AGENT,
    AGENTS,
    CLIENT_ID,
    CLIENT_SECRET,
    FRONT_DESK,
    STATUS,
    TOKEN,
    FakeTelzino,
    serve,
)
from tests.common import FakeClock

pytestmark = pytest.mark.ha_free

UNKNOWN_AGENT = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def credentials_client(
    session: aiohttp.ClientSession, fake_url: str, clock: FakeClock
) -> TelzinoClient:
    """Return a client that authenticates with client credentials."""
    return TelzinoClient(
        ClientCredentials(CLIENT_ID, CLIENT_SECRET),
        session=session,
        api_url=fake_url,
        clock=clock,
        request_timeout=2,
    )


def token_client(session: aiohttp.ClientSession, url: str, token: str) -> TelzinoClient:
    """Return a client with a pasted token."""
    return TelzinoClient(
        AccessToken(token), session=session, api_url=url, request_timeout=2
    )


# Success paths ------------------------------------------------------------------


async def test_agents_follow_every_page(
    fake: FakeTelzino, credentials_client: TelzinoClient
) -> None:
    """250 agents arrive in 3 pages of at most 100, with one token request."""
    created = fake.add_agents(250)

    agents = await credentials_client.get_agents()

    assert [agent.id for agent in agents] == [agent.id for agent in created]
    assert agents[0] == Agent(
        id=created[0].id,
        name="Agent 000",
        organization_id=created[0].organization_id,
        status="active",
        is_active=True,
    )
    assert fake.stats.requests == {TOKEN: 1, AGENTS: 3}


async def test_empty_account_lists_no_agents(
    fake: FakeTelzino, credentials_client: TelzinoClient
) -> None:
    """Empty account lists no agents."""
    assert await credentials_client.get_agents() == []
    assert fake.stats.requests[AGENTS] == 1


@pytest.mark.parametrize(
    ("omit", "pages"),
    [
        ({"hasNext"}, 2),  # totalPages decides
        ({"hasNext", "totalPages"}, 2),  # a full page means there may be more
        ({"pagination"}, 2),
    ],
)
async def test_pagination_without_has_next(
    fake: FakeTelzino,
    credentials_client: TelzinoClient,
    omit: set[str],
    pages: int,
) -> None:
    """Without hasNext the client follows totalPages, then page fullness."""
    fake.add_agents(150)
    fake.pagination_omit = omit

    agents = await credentials_client.get_agents()

    assert len(agents) == 150
    assert fake.stats.requests[AGENTS] == pages


async def test_static_token_needs_no_token_request(
    fake: FakeTelzino, session: aiohttp.ClientSession, fake_url: str
) -> None:
    """Static token needs no token request."""
    agent = fake.add_agent("Front desk")
    client = token_client(session, fake_url, fake.add_token())

    await client.authenticate()
    assert await client.get_agent(agent.id) == Agent(
        id=agent.id,
        name="Front desk",
        organization_id=agent.organization_id,
        status="active",
        is_active=True,
    )
    assert fake.stats.requests == {AGENT: 1}


async def test_registered_status_is_fully_parsed(
    fake: FakeTelzino, credentials_client: TelzinoClient, clock: FakeClock
) -> None:
    """Registered status is fully parsed."""
    agent = fake.add_agent("Front desk")

    status = await credentials_client.get_registration_status(agent.id)

    sent = datetime.fromtimestamp(clock.now, UTC)
    assert status == RegistrationStatus(
        state=RegistrationState.REGISTERED,
        raw_state="REGISTERED_STATE",
        state_code=3,
        is_registered=True,
        enabled=True,
        expires=sent + timedelta(seconds=3600),
        last_register_sent=sent,
        registration_interval=3600,
        error_message="Successfully registered",
    )
    assert status.expires is not None
    assert status.expires.tzinfo is UTC


async def test_a_status_is_read_again_only_when_its_answer_changes(
    fake: FakeTelzino, credentials_client: TelzinoClient, clock: FakeClock
) -> None:
    """The same answer gives the same status; any change in it gives the new one."""
    agent = fake.add_agent("Front desk")
    first = await credentials_client.get_registration_status(agent.id)
    assert await credentials_client.get_registration_status(agent.id) is first

    clock.now += 60
    fake.set_state(agent.id, "REGISTERED_STATE")  # refreshed: new expiry
    refreshed = await credentials_client.get_registration_status(agent.id)
    assert first.expires is not None
    assert refreshed.expires == first.expires + timedelta(seconds=60)

    fake.set_state(agent.id, "REGISTER_TIMEOUT_STATE")
    lost = await credentials_client.get_registration_status(agent.id)
    assert lost.state is RegistrationState.REGISTER_TIMEOUT
    assert not lost.is_registered


async def test_agent_id_is_accepted_in_any_uuid_spelling(
    fake: FakeTelzino, credentials_client: TelzinoClient
) -> None:
    """Agent id is accepted in any uuid spelling."""
    agent = fake.add_agent("Front desk")
    status = await credentials_client.get_registration_status(f"  {agent.id.upper()} ")
    assert status.is_registered


async def test_not_found_and_not_registered_share_code_0_but_not_state(
    fake: FakeTelzino, credentials_client: TelzinoClient
) -> None:
    """Not found and not registered share code 0 but not state."""
    not_found = fake.add_agent("New", state="NOT_FOUND")
    waiting = fake.add_agent("Waiting", state="NOT_REGISTERED_STATE")

    first = await credentials_client.get_registration_status(not_found.id)
    second = await credentials_client.get_registration_status(waiting.id)

    assert (first.state, first.state_code) == (RegistrationState.NOT_FOUND, 0)
    assert (second.state, second.state_code) == (RegistrationState.NOT_REGISTERED, 0)
    assert not first.is_registered
    assert not second.is_registered
    # Not registered: no expiry, and never 1970.
    assert first.expires is None
    assert second.expires is None
    assert first.last_register_sent is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NOT_REGISTERED_STATE", RegistrationState.NOT_REGISTERED),
        ("REGISTERING_STATE", RegistrationState.REGISTERING),
        ("AUTHENTICATING_STATE", RegistrationState.AUTHENTICATING),
        ("REGISTERED_STATE", RegistrationState.REGISTERED),
        ("REGISTER_TIMEOUT_STATE", RegistrationState.REGISTER_TIMEOUT),
        ("INTERNAL_ERROR_STATE", RegistrationState.INTERNAL_ERROR),
        ("WRONG_CREDENTIALS_STATE", RegistrationState.WRONG_CREDENTIALS),
        ("REGISTRAR_ERROR_STATE", RegistrationState.REGISTRAR_ERROR),
        ("NOT_FOUND", RegistrationState.NOT_FOUND),
        # Undocumented by Telzino; OpenSIPS' two unREGISTER states, one to users.
        ("UNREGISTERING_STATE", RegistrationState.UNREGISTERING),
        ("AUTHENTICATING_UNREGISTER_STATE", RegistrationState.UNREGISTERING),
    ],
)
async def test_every_documented_state(
    fake: FakeTelzino,
    credentials_client: TelzinoClient,
    name: str,
    expected: RegistrationState,
) -> None:
    """Every known state name maps to its state; NOT_FOUND is not NOT_REGISTERED."""
    agent = fake.add_agent("Agent", state=name)
    status = await credentials_client.get_registration_status(agent.id)
    assert status.state is expected
    assert status.raw_state == name
    assert status.is_registered is (expected is RegistrationState.REGISTERED)


@pytest.mark.parametrize(("name", "code"), [("SOME_STATE_8", 8), ("NEW_STATE", 9)])
async def test_unknown_state_is_kept_and_not_registered(
    fake: FakeTelzino, credentials_client: TelzinoClient, name: str, code: int
) -> None:
    """Unknown state is kept and not registered."""
    agent = fake.add_agent("Agent", state=name, state_code=code)

    status = await credentials_client.get_registration_status(agent.id)

    assert status.state is RegistrationState.UNKNOWN
    assert (status.raw_state, status.state_code) == (name, code)
    assert not status.is_registered


@pytest.mark.parametrize(
    ("field", "value", "attribute", "expected"),
    [
        ("expires", 0, "expires", None),
        ("expires", None, "expires", None),
        ("expires", "1795003600", "expires", datetime.fromtimestamp(1795003600, UTC)),
        ("expires", "soon", "expires", None),
        ("expires", True, "expires", None),
        ("expires", -5, "expires", None),
        ("expires", float("inf"), "expires", None),
        ("expires", 10**20, "expires", None),
        ("lastRegisterSent", None, "last_register_sent", None),
        ("lastRegisterSent", "yesterday", "last_register_sent", None),
        ("lastRegisterSent", "1970-01-01T00:00:00Z", "last_register_sent", None),
        (
            "lastRegisterSent",
            "2026-02-22T12:00:00",
            "last_register_sent",
            datetime(2026, 2, 22, 12, tzinfo=UTC),
        ),
        (
            "lastRegisterSent",
            "2026-02-22T13:00:00+01:00",
            "last_register_sent",
            datetime(2026, 2, 22, 12, tzinfo=UTC),
        ),
        # The formats an API may give a time in: parsed, or missing.
        (
            "lastRegisterSent",
            "2026-02-22T12:00:00.250Z",
            "last_register_sent",
            datetime(2026, 2, 22, 12, 0, 0, 250000, tzinfo=UTC),
        ),
        (
            "lastRegisterSent",
            "2026-02-22T07:30:00-04:30",
            "last_register_sent",
            datetime(2026, 2, 22, 12, tzinfo=UTC),
        ),
        (
            "lastRegisterSent",
            1771761600,
            "last_register_sent",
            datetime(2026, 2, 22, 12, tzinfo=UTC),
        ),
        (
            "lastRegisterSent",
            "1771761600.5",
            "last_register_sent",
            datetime(2026, 2, 22, 12, 0, 0, 500000, tzinfo=UTC),
        ),
        (
            "lastRegisterSent",
            1771761600000,
            "last_register_sent",
            datetime(2026, 2, 22, 12, tzinfo=UTC),
        ),
        ("lastRegisterSent", "", "last_register_sent", None),
        ("lastRegisterSent", "  ", "last_register_sent", None),
        ("lastRegisterSent", 0, "last_register_sent", None),
        ("lastRegisterSent", True, "last_register_sent", None),
        ("lastRegisterSent", [], "last_register_sent", None),
        ("lastRegisterSent", "inf", "last_register_sent", None),
        ("registrationTimeout", "3600", "registration_interval", 3600),
        ("registrationTimeout", 120, "registration_interval", 120),
        ("registrationTimeout", "ten", "registration_interval", None),
        ("registrationTimeout", "-1", "registration_interval", None),
        ("registrationTimeout", False, "registration_interval", None),
        ("registrationTimeout", None, "registration_interval", None),
        ("enabled", "no", "enabled", False),
        ("enabled", "YES", "enabled", True),
        ("enabled", True, "enabled", True),
        ("enabled", "maybe", "enabled", None),
        ("enabled", None, "enabled", None),
        ("errorMessage", "", "error_message", None),
        ("errorMessage", 5, "error_message", None),
        ("stateCode", "3", "state_code", None),
        ("stateCode", True, "state_code", None),
    ],
)
def test_optional_fields_parse_defensively(
    field: str, value: Any, attribute: str, expected: Any
) -> None:
    """Absent, zero or odd optional fields give None, never an error or 1970."""
    data: dict[str, Any] = {"state": "REGISTERED_STATE", "isRegistered": True}
    if value is not None:
        data[field] = value
    assert getattr(RegistrationStatus.from_api(data), attribute) == expected


def test_a_status_moves_onto_another_clock() -> None:
    """Its times move by the offset; without one it is the same object."""
    status = RegistrationStatus.from_api(
        {
            "state": "REGISTERED_STATE",
            "isRegistered": True,
            "expires": 1771765200,
            "lastRegisterSent": "2026-02-22T12:00:00Z",
        }
    )
    assert status.shifted(0) is status
    moved = status.shifted(-90)
    assert moved.expires == datetime(2026, 2, 22, 12, 58, 30, tzinfo=UTC)
    assert moved.last_register_sent == datetime(2026, 2, 22, 11, 58, 30, tzinfo=UTC)
    bare = RegistrationStatus.from_api({"state": "NOT_FOUND", "isRegistered": False})
    assert bare.shifted(30) == bare


# The server's clock -------------------------------------------------------------


def http_date(seconds: float) -> str:
    """Return an HTTP Date header for a Unix time (whole seconds, as servers send)."""
    return formatdate(seconds, usegmt=True)


def test_server_clock_is_the_median_of_recent_answers() -> None:
    """One slow answer or odd proxy does not move it; whole seconds, no jitter."""
    server_clock = ServerClock()
    assert (server_clock.known, server_clock.offset) == (False, 0.0)
    local = 1_795_000_000.0
    for n in range(10):
        # The server 90 s ahead; answers in 0.2 s, sent at various fractions.
        sent = local + n * 7.3
        server_clock.record(http_date(sent + 0.1 + 90), sent, sent + 0.2)
    # A proxy with its own clock, and an answer that took 20 s.
    server_clock.record(http_date(local + 3600), local, local + 0.2)
    server_clock.record(http_date(local + 20 + 90), local, local + 20)
    assert server_clock.known
    assert server_clock.offset == 90.0
    # Within a second of it: the offset in use stays put.
    for n in range(20):
        sent = local + 100 + n
        server_clock.record(http_date(sent + 90.9), sent, sent + 0.2)
    assert server_clock.offset == 90.0
    # The host's clock is corrected by a minute: followed.
    for n in range(20):
        sent = local + 200 + n
        server_clock.record(http_date(sent + 30.1), sent, sent + 0.2)
    assert server_clock.offset == 30.0


def test_server_clock_reads_a_date_without_a_zone_as_utc() -> None:
    """A Date stamped -0000 (no zone known) is taken as UTC, as HTTP's are."""
    server_clock = ServerClock()
    local = datetime(2026, 12, 6, 2, 0, 0, tzinfo=UTC).timestamp()
    server_clock.record("Sun, 06 Dec 2026 02:01:00 -0000", local - 0.6, local - 0.4)
    assert server_clock.offset == 61.0


@pytest.mark.parametrize("date", [None, "", "yesterday", "Sun, 99 Foo 2026 99:99:99"])
def test_server_clock_ignores_answers_without_a_usable_date(date: str | None) -> None:
    """No Date header, or one that cannot be read: nothing is learned from it."""
    server_clock = ServerClock()
    server_clock.record(date, 1_795_000_000.0, 1_795_000_000.2)
    assert (server_clock.known, server_clock.offset) == (False, 0.0)


@pytest.mark.parametrize("server_ahead", [-90, 0, 3600])
async def test_client_learns_the_servers_clock_from_its_answers(
    session: aiohttp.ClientSession, socket_enabled: None, server_ahead: int
) -> None:
    """Every answer, the token's included, shows the server's clock."""
    fake = FakeTelzino(clock=lambda: time.time() + server_ahead)
    agent = fake.add_agent("Front desk")
    async with serve(fake) as url:
        client = TelzinoClient(
            ClientCredentials(CLIENT_ID, CLIENT_SECRET), session=session, api_url=url
        )
        await client.authenticate()
        assert client.server_clock.known
        await client.get_registration_status(agent.id)
    assert abs(client.server_clock.offset - server_ahead) <= 1


# Tokens -----------------------------------------------------------------------


async def test_token_is_cached_then_renewed_before_expiry(
    fake: FakeTelzino, credentials_client: TelzinoClient, clock: FakeClock
) -> None:
    """Token is cached then renewed before expiry."""
    agent = fake.add_agent("Front desk")

    for _ in range(3):
        await credentials_client.get_registration_status(agent.id)
    assert fake.stats.requests[TOKEN] == 1

    # 24 h tokens are renewed 5 minutes early, before the server would refuse them.
    clock.advance(86400 - 300 - 1)
    await credentials_client.get_registration_status(agent.id)
    assert fake.stats.requests[TOKEN] == 1
    clock.advance(2)
    await credentials_client.get_registration_status(agent.id)
    assert fake.stats.requests == {TOKEN: 2, STATUS: 5}


async def test_short_lived_token_is_renewed_a_tenth_early(
    fake: FakeTelzino, credentials_client: TelzinoClient, clock: FakeClock
) -> None:
    """Short lived token is renewed a tenth early."""
    fake.token_lifetime = 100
    agent = fake.add_agent("Front desk")
    await credentials_client.get_registration_status(agent.id)
    clock.advance(89)
    await credentials_client.get_registration_status(agent.id)
    assert fake.stats.requests[TOKEN] == 1
    clock.advance(2)
    await credentials_client.get_registration_status(agent.id)
    assert fake.stats.requests[TOKEN] == 2


async def test_token_is_renewed_once_on_401_and_the_call_retried(
    fake: FakeTelzino, credentials_client: TelzinoClient
) -> None:
    """Token is renewed once on 401 and the call retried."""
    agent = fake.add_agent("Front desk")
    await credentials_client.get_registration_status(agent.id)
    fake.expire_tokens()

    status = await credentials_client.get_registration_status(agent.id)

    assert status.is_registered
    assert fake.stats.requests == {TOKEN: 2, STATUS: 3}


async def test_second_401_after_renewal_is_an_authentication_error(
    fake: FakeTelzino, credentials_client: TelzinoClient
) -> None:
    """Second 401 after renewal is an authentication error."""
    agent = fake.add_agent("Front desk")
    fake.inject(STATUS, status=401)

    with pytest.raises(TelzinoAuthenticationError):
        await credentials_client.get_registration_status(agent.id)
    assert fake.stats.requests == {TOKEN: 2, STATUS: 2}


async def test_concurrent_cold_calls_share_one_token_request(
    fake: FakeTelzino, session: aiohttp.ClientSession, fake_url: str
) -> None:
    """Concurrent cold calls share one token request."""
    fake.latency = 0.05  # the token request is still in flight while all queue up
    agents = fake.add_agents(100)
    client = TelzinoClient(
        ClientCredentials(CLIENT_ID, CLIENT_SECRET),
        session=session,
        api_url=fake_url,
        max_concurrency=100,
    )

    results = await asyncio.gather(
        *(client.get_registration_status(agent.id) for agent in agents)
    )

    assert all(status.is_registered for status in results)
    assert fake.stats.requests == {TOKEN: 1, STATUS: 100}


async def test_concurrent_401s_share_one_renewal(
    fake: FakeTelzino, credentials_client: TelzinoClient
) -> None:
    """Concurrent 401s share one renewal."""
    agents = fake.add_agents(50)
    await credentials_client.authenticate()
    fake.expire_tokens()

    results = await credentials_client.get_registration_statuses(
        agent.id for agent in agents
    )

    assert all(isinstance(r, RegistrationStatus) for r in results.values())
    assert fake.stats.requests[TOKEN] == 2


async def test_static_token_401_is_an_authentication_error_without_secret(
    fake: FakeTelzino, session: aiohttp.ClientSession, fake_url: str
) -> None:
    """Static token 401 is an authentication error without secret."""
    agent = fake.add_agent("Front desk")
    client = token_client(session, fake_url, "pasted-secret-token")

    with pytest.raises(TelzinoAuthenticationError) as caught:
        await client.get_registration_status(agent.id)

    assert "pasted-secret-token" not in str(caught.value)
    assert "pasted-secret-token" not in repr(AccessToken("pasted-secret-token"))
    assert fake.stats.requests == {STATUS: 1}


@pytest.mark.parametrize("status", [400, 401, 403])
async def test_rejected_client_credentials(
    fake: FakeTelzino,
    session: aiohttp.ClientSession,
    fake_url: str,
    status: int,
) -> None:
    """Rejected client credentials raise an authentication error, not a retry."""
    fake.inject(TOKEN, status=status)
    credentials = ClientCredentials("the-client-id", "the-client-secret")
    client = TelzinoClient(credentials, session=session, api_url=fake_url)

    with pytest.raises(TelzinoAuthenticationError) as caught:
        await client.get_agents()

    message = f"{caught.value} {caught.value.__cause__} {credentials!r}"
    assert "the-client-id" not in message
    assert "the-client-secret" not in message
    assert fake.stats.requests == {TOKEN: 1}


async def test_wrong_client_secret_is_rejected_by_the_server(
    fake: FakeTelzino, session: aiohttp.ClientSession, fake_url: str
) -> None:
    """Wrong client secret is rejected by the server."""
    client = TelzinoClient(
        ClientCredentials(CLIENT_ID, "wrong"), session=session, api_url=fake_url
    )
    with pytest.raises(TelzinoAuthenticationError):
        await client.authenticate()


@pytest.mark.parametrize(
    "body",
    [
        '{"token_type": "Bearer"}',
        '{"access_token": "", "expires_in": 60}',
    ],
)
async def test_token_response_without_token_is_invalid(
    fake: FakeTelzino, credentials_client: TelzinoClient, body: str
) -> None:
    """Token response without token is invalid."""
    fake.inject(TOKEN, status=200, body=body)
    with pytest.raises(TelzinoInvalidResponseError):
        await credentials_client.authenticate()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"latency": 3}, "POST /oauth/token: timed out"),  # request timeout: 2 s
        ({"drop": "close"}, "POST /oauth/token: connection failed"),
        ({"status": 503}, "POST /oauth/token: HTTP 503"),
    ],
)
async def test_unreachable_token_endpoint_is_a_connection_error(
    fake: FakeTelzino,
    credentials_client: TelzinoClient,
    fault: dict[str, Any],
    message: str,
) -> None:
    """A token endpoint that does not answer is an outage, not bad credentials."""
    fake.inject(TOKEN, **fault)
    with pytest.raises(TelzinoConnectionError, match=message) as caught:
        await credentials_client.get_agents()
    assert CLIENT_SECRET not in str(caught.value)
    assert fake.stats.requests == {TOKEN: 1}


async def test_token_without_lifetime_is_renewed_hourly(
    fake: FakeTelzino, credentials_client: TelzinoClient, clock: FakeClock
) -> None:
    """Token without lifetime is renewed hourly."""
    fake.inject(TOKEN, status=200, body='{"access_token": "t1", "expires_in": "x"}')
    fake.add_token("t1")
    await credentials_client.authenticate()
    clock.advance(3600 - 300 + 1)
    await credentials_client.authenticate()
    assert fake.stats.requests[TOKEN] == 2


# Error mapping ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"status": 403}, TelzinoForbiddenError),
        ({"status": 400}, TelzinoRequestError),
        ({"status": 302}, TelzinoRequestError),
        ({"status": 500}, TelzinoConnectionError),
        (
            {
                "status": 502,
                "body": "<html><body>Bad Gateway</body></html>",
                "content_type": "text/html",
            },
            TelzinoConnectionError,
        ),
        ({"status": 503}, TelzinoConnectionError),
        ({"latency": 3}, TelzinoConnectionError),  # beyond the 2 s request timeout
        ({"drop": "close"}, TelzinoConnectionError),
        (
            {"drop": "mid_body", "body": '{"success": true, "data": {}}'},
            TelzinoConnectionError,
        ),
        ({"status": 200, "body": "not json"}, TelzinoInvalidResponseError),
        (
            {"status": 200, "body": "<html>Hi</html>", "content_type": "text/html"},
            TelzinoInvalidResponseError,
        ),
        ({"status": 200, "body": ""}, TelzinoInvalidResponseError),
        ({"status": 200, "body": "[1, 2]"}, TelzinoInvalidResponseError),
        ({"status": 200, "body": '{"success": true}'}, TelzinoInvalidResponseError),
        ({"status": 200, "body": '{"data": []}'}, TelzinoInvalidResponseError),
        (
            {"status": 200, "body": '{"data": {"isRegistered": true}}'},
            TelzinoInvalidResponseError,
        ),
        (
            {
                "status": 200,
                "body": '{"data": {"state": "REGISTERED_STATE", "isRegistered": "true"}}',
            },
            TelzinoInvalidResponseError,
        ),
        (
            {
                "status": 200,
                "body": '{"success": false, "data": {"state": "NOT_FOUND", "isRegistered": false}}',
            },
            TelzinoInvalidResponseError,
        ),
        (
            {"status": 200, "body": '{"data": "' + "x" * (5 * 1024 * 1024) + '"}'},
            TelzinoInvalidResponseError,
        ),
    ],
)
async def test_status_errors_are_mapped(
    fake: FakeTelzino,
    credentials_client: TelzinoClient,
    fault: dict[str, Any],
    error: type[TelzinoError],
) -> None:
    """Each HTTP status of the status endpoint becomes its own client error."""
    agent = fake.add_agent("Front desk")
    fake.inject(STATUS, agent.id, **fault)

    with pytest.raises(error) as caught:
        await credentials_client.get_registration_status(agent.id)

    assert CLIENT_SECRET not in str(caught.value)
    assert not any(token in str(caught.value) for token in fake.tokens)


@pytest.mark.parametrize(
    ("endpoint", "path", "error"),
    [
        (STATUS, "/v1/agents/{agent}/sip/registration/status", TelzinoRequestError),
        (TOKEN, "/oauth/token", TelzinoAuthenticationError),
    ],
    ids=["status", "token"],
)
async def test_a_redirect_is_an_error_and_takes_no_secret_elsewhere(
    fake: FakeTelzino,
    clock: FakeClock,
    credentials_client: TelzinoClient,
    endpoint: str,
    path: str,
    error: type[Exception],
) -> None:
    """A redirect to another server is not followed: the bearer token or the client secret would go with it."""
    agent = fake.add_agent("Front desk")
    elsewhere = FakeTelzino(clock=clock)
    async with serve(elsewhere) as elsewhere_url:
        location = elsewhere_url + path.format(agent=agent.id)
        fake.inject(endpoint, status=307, location=location)
        with pytest.raises(error):
            await credentials_client.get_registration_status(agent.id)
    assert not elsewhere.stats.requests


async def test_streamed_body_over_the_limit_is_refused(
    fake: FakeTelzino, credentials_client: TelzinoClient
) -> None:
    """A body with no Content-Length is cut off once it passes the limit."""
    agent = fake.add_agent("Front desk")
    fake.inject(STATUS, status=200, body=" " * (5 * 1024 * 1024), chunked=True)

    with pytest.raises(TelzinoInvalidResponseError, match="too large"):
        await credentials_client.get_registration_status(agent.id)


async def test_streamed_body_within_the_limit_is_read(
    fake: FakeTelzino, credentials_client: TelzinoClient
) -> None:
    """Streamed body within the limit is read."""
    agent = fake.add_agent("Front desk")
    body = '{"data": {"state": "REGISTERED_STATE", "isRegistered": true}}'
    fake.inject(STATUS, status=200, body=body + " " * 300_000, chunked=True)

    status = await credentials_client.get_registration_status(agent.id)

    assert status.state is RegistrationState.REGISTERED


async def test_unknown_agent_is_not_found(
    credentials_client: TelzinoClient,
) -> None:
    """Unknown agent is not found."""
    with pytest.raises(TelzinoNotFoundError):
        await credentials_client.get_registration_status(UNKNOWN_AGENT)
    with pytest.raises(TelzinoNotFoundError):
        await credentials_client.get_agent(UNKNOWN_AGENT)


async def test_connection_refused_is_a_connection_error(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    """Connection refused is a connection error."""
    client = TelzinoClient(
        AccessToken("token"), session=session, api_url="http://127.0.0.1:9"
    )
    with pytest.raises(TelzinoConnectionError):
        await client.get_agents()


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("7", 7.0), ("0.5", 0.5), (None, None), ("soon", None)],
)
async def test_rate_limit_carries_retry_after(
    fake: FakeTelzino,
    credentials_client: TelzinoClient,
    retry_after: str | None,
    expected: float | None,
) -> None:
    """Rate limit carries retry after."""
    agent = fake.add_agent("Front desk")
    fake.inject(STATUS, status=429, retry_after=retry_after)

    with pytest.raises(TelzinoRateLimitedError) as caught:
        await credentials_client.get_registration_status(agent.id)

    assert caught.value.retry_after == expected


async def test_rate_limit_retry_after_as_http_date(
    fake: FakeTelzino, credentials_client: TelzinoClient
) -> None:
    """Rate limit retry after as http date."""
    agent = fake.add_agent("Front desk")
    when = datetime.now(UTC) + timedelta(seconds=120)
    fake.inject(
        STATUS, status=429, retry_after=when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    )

    with pytest.raises(TelzinoRateLimitedError) as caught:
        await credentials_client.get_registration_status(agent.id)

    assert caught.value.retry_after is not None
    assert 110 <= caught.value.retry_after <= 120


@pytest.mark.parametrize("server_ahead", [-600, 600], ids=["behind", "ahead"])
async def test_an_http_date_retry_after_is_read_on_the_servers_clock(
    session: aiohttp.ClientSession, socket_enabled: None, server_ahead: int
) -> None:
    """The API's clock is 10 minutes off this host's: its HTTP-date asks for 120 s, not 720 or 0.

    The date is the server's, and so is the `Date` of the same answer: the
    wait is the time between them, whatever this host's clock says.
    """
    fake = FakeTelzino(clock=lambda: time.time() + server_ahead)
    agent = fake.add_agent("Front desk")
    when = datetime.now(UTC) + timedelta(seconds=server_ahead + 120)
    fake.inject(
        STATUS, status=429, retry_after=when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    )
    async with serve(fake) as url:
        client = TelzinoClient(
            ClientCredentials(CLIENT_ID, CLIENT_SECRET), session=session, api_url=url
        )
        with pytest.raises(TelzinoRateLimitedError) as caught:
            await client.get_registration_status(agent.id)

    assert caught.value.retry_after is not None
    assert 118 <= caught.value.retry_after <= 121
    assert 117 <= client.budget.blocked_for() <= 121


def test_parse_retry_after_edge_cases() -> None:
    """Parse retry after edge cases."""
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert parse_retry_after("Fri, 27 Nov 2026 12:01:00 GMT", now) == 60
    assert parse_retry_after("Fri, 27 Nov 2026 11:00:00 GMT", now) == 0  # past
    assert parse_retry_after("Fri, 27 Nov 2026 12:00:30 -0000", now) == 30
    assert parse_retry_after("-3", now) == 0
    assert parse_retry_after("nan", now) is None
    assert parse_retry_after("  ", now) is None


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        (AGENTS, '{"items": []}'),
        (AGENTS, '{"data": [{"name": "No id"}]}'),
        (AGENTS, '{"data": ["not an object"]}'),
        (AGENT, '{"data": null}'),
    ],
)
async def test_malformed_agent_answers(
    fake: FakeTelzino, credentials_client: TelzinoClient, endpoint: str, body: str
) -> None:
    """Agent answers of the wrong shape are invalid responses, never crashes."""
    fake.inject(endpoint, status=200, body=body)
    call = (
        credentials_client.get_agents()
        if endpoint == AGENTS
        else credentials_client.get_agent(UNKNOWN_AGENT)
    )
    with pytest.raises(TelzinoInvalidResponseError):
        await call


async def test_agent_without_a_name_is_named_by_its_id(
    fake: FakeTelzino, credentials_client: TelzinoClient
) -> None:
    """Agent without a name is named by its id."""
    fake.inject(
        AGENTS,
        status=200,
        body='{"data": [{"id": "a1", "name": "  ", "is_active": "yes"}], "pagination": {"hasNext": false}}',
    )
    assert await credentials_client.get_agents() == [Agent(id="a1", name="a1")]


async def test_pagination_that_never_ends_is_refused(
    fake: FakeTelzino,
    credentials_client: TelzinoClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pagination that never ends is refused."""
    monkeypatch.setattr(api_client, "MAX_AGENT_PAGES", 3)
    fake.inject(
        AGENTS,
        status=200,
        body='{"data": [{"id": "a1", "name": "A"}], "pagination": {"hasNext": true}}',
    )
    with pytest.raises(TelzinoInvalidResponseError, match="does not end"):
        await credentials_client.get_agents()
    assert fake.stats.requests[AGENTS] == 3


# Batches ------------------------------------------------------------------------


async def test_batch_respects_the_concurrency_bound(
    fake: FakeTelzino, session: aiohttp.ClientSession, fake_url: str
) -> None:
    """Batch respects the concurrency bound."""
    fake.latency = 0.02
    agents = fake.add_agents(40)
    client = TelzinoClient(
        AccessToken(fake.add_token()),
        session=session,
        api_url=fake_url,
        max_concurrency=7,
    )

    results = await client.get_registration_statuses(agent.id for agent in agents)

    assert len(results) == 40
    assert fake.stats.requests[STATUS] == 40
    assert fake.stats.max_in_flight == 7


async def test_one_bad_agent_does_not_fail_the_others(
    fake: FakeTelzino, credentials_client: TelzinoClient
) -> None:
    """One bad agent does not fail the others."""
    good, broken = fake.add_agents(2)
    fake.inject(STATUS, broken.id, status=200, body="<html>")

    results = await credentials_client.get_registration_statuses(
        [good.id, broken.id, UNKNOWN_AGENT, good.id]
    )

    assert list(results) == [good.id, broken.id, UNKNOWN_AGENT]
    assert isinstance(results[good.id], RegistrationStatus)
    assert isinstance(results[broken.id], TelzinoInvalidResponseError)
    assert isinstance(results[UNKNOWN_AGENT], TelzinoNotFoundError)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"status": 429, "retry_after": "30"}, TelzinoRateLimitedError),
        ({"status": 401}, TelzinoAuthenticationError),
    ],
)
async def test_batch_stops_sending_once_told_to_stop(
    fake: FakeTelzino,
    session: aiohttp.ClientSession,
    fake_url: str,
    fault: dict[str, Any],
    error: type[TelzinoError],
) -> None:
    """Batch stops sending once told to stop."""
    agents = fake.add_agents(20)
    fake.inject(STATUS, **fault)
    client = TelzinoClient(
        AccessToken(fake.add_token()),
        session=session,
        api_url=fake_url,
        max_concurrency=2,
    )

    results = await client.get_registration_statuses(agent.id for agent in agents)

    assert all(isinstance(result, error) for result in results.values())
    assert fake.stats.requests[STATUS] == 2


async def test_invalid_agent_id_in_a_batch_is_that_agent_error(
    fake: FakeTelzino, credentials_client: TelzinoClient
) -> None:
    """Invalid agent id in a batch is that agent error."""
    agent = fake.add_agent("Front desk")
    results = await credentials_client.get_registration_statuses(
        [agent.id, "not-a-uuid"]
    )
    assert isinstance(results[agent.id], RegistrationStatus)
    assert isinstance(results["not-a-uuid"], TelzinoInvalidAgentIdError)
    assert fake.stats.requests[STATUS] == 1


# Input checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    "agent_id", ["", "abc", "../admin", "1234", "6f1c2a4e-8d3b-4c5a-9e7f-1a2b3c4d5e0"]
)
async def test_invalid_agent_ids_are_refused_before_any_request(
    fake: FakeTelzino, credentials_client: TelzinoClient, agent_id: str
) -> None:
    """Invalid agent ids are refused before any request."""
    with pytest.raises(TelzinoInvalidAgentIdError) as caught:
        await credentials_client.get_registration_status(agent_id)
    assert caught.value.agent_id == agent_id
    with pytest.raises(TelzinoInvalidAgentIdError):
        await credentials_client.get_agent(agent_id)
    assert not fake.stats.requests


def test_validate_agent_id_normalizes() -> None:
    """Agent IDs are normalized to lower-case canonical UUIDs."""
    assert (
        validate_agent_id("6F1C2A4E8D3B4C5A9E7F1A2B3C4D5E01")
        == "6f1c2a4e-8d3b-4c5a-9e7f-1a2b3c4d5e01"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.telzino.com", "https://api.telzino.com"),
        ("https://api.telzino.com/", "https://api.telzino.com"),
        (" https://eu.example.com:8443/base/ ", "https://eu.example.com:8443/base"),
        ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
        ("http://localhost:8787/", "http://localhost:8787"),
        ("http://[::1]:8787", "http://[::1]:8787"),
    ],
)
def test_valid_api_urls(url: str, expected: str) -> None:
    """HTTPS URLs (and plain http on loopback) are accepted and normalized."""
    assert validate_api_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://api.telzino.com",
        "http://192.168.1.10",
        "ftp://api.telzino.com",
        "api.telzino.com",
        "https://",
        "https://api.telzino.com?x=1",
        "https://user:pw@api.telzino.com",
        "https://api.telzino.com:99999",
        "",
    ],
)
def test_invalid_api_urls(url: str) -> None:
    """Plain http, other schemes, queries and credentials in the URL are refused."""
    with pytest.raises(TelzinoInvalidUrlError):
        validate_api_url(url)


def test_client_refuses_bad_settings(session: aiohttp.ClientSession) -> None:
    """A bad URL or concurrency bound fails at construction, before any request."""
    with pytest.raises(TelzinoInvalidUrlError):
        TelzinoClient(AccessToken("t"), session=session, api_url="http://example.com")
    with pytest.raises(TelzinoInvalidInputError):
        TelzinoClient(AccessToken("t"), session=session, max_concurrency=0)
    client = TelzinoClient(
        AccessToken("t"), session=session, api_url="https://x.example/"
    )
    assert (client.api_url, client.max_concurrency) == ("https://x.example", 10)


def test_model_parsers_refuse_non_objects() -> None:
    """Model parsers refuse non objects."""
    with pytest.raises(TelzinoInvalidResponseError):
        RegistrationStatus.from_api(None)
    with pytest.raises(TelzinoInvalidResponseError):
        Agent.from_api([])


async def test_client_without_a_session_opens_and_closes_its_own(
    fake: FakeTelzino, fake_url: str, agents: list[str]
) -> None:
    """Used as `async with`, a client without a session cleans up after itself."""
    async with TelzinoClient(
        ClientCredentials(CLIENT_ID, CLIENT_SECRET), api_url=fake_url
    ) as client:
        status = await client.get_registration_status(FRONT_DESK)
        own_session = client._session
        assert own_session is not None
    assert status.state is RegistrationState.REGISTERED
    assert own_session.closed
    # Closing twice is harmless; the next request opens a new session.
    await client.close()
    await client.get_registration_status(FRONT_DESK)
    await client.close()


async def test_close_leaves_a_session_that_was_passed_in_open(
    session: aiohttp.ClientSession, fake_url: str, agents: list[str]
) -> None:
    """The caller's session belongs to the caller (Home Assistant's shared one)."""
    async with TelzinoClient(
        ClientCredentials(CLIENT_ID, CLIENT_SECRET), session=session, api_url=fake_url
    ) as client:
        await client.get_registration_status(FRONT_DESK)
    assert not session.closed
