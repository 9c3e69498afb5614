"""The fake Telzino API: its state, its HTTP endpoints and its control API.

It serves the endpoints the integration uses, holds agents and their SIP
registration state, injects faults per endpoint and per agent, and counts
requests. Tests drive it through `FakeTelzino`'s methods; a running Home
Assistant is driven from outside through the control API under `/_fake/`.
"""

import asyncio
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
import math
import random
import secrets
import time
from typing import Any, Final
import uuid

from aiohttp import web

from .agent import FakeAgent
from .const import CLIENT_ID, CLIENT_SECRET
from .ratelimit import RateLimit, Tiers
from .registrant import BEHAVIOURS, Registrant

# The endpoints the counters and faults are keyed on.
TOKEN: Final = "token"  # noqa: S105  # an endpoint name
AGENTS: Final = "agents"
AGENT: Final = "agent"
STATUS: Final = "status"
ENDPOINTS: Final = (TOKEN, AGENTS, AGENT, STATUS)

# Every documented state with its code and the message the API gives with it.
STATES: Final[dict[str, tuple[int, str]]] = {
    "NOT_REGISTERED_STATE": (0, "Not registered"),
    "REGISTERING_STATE": (1, "Registering"),
    "AUTHENTICATING_STATE": (2, "Authenticating"),
    "REGISTERED_STATE": (3, "Successfully registered"),
    "REGISTER_TIMEOUT_STATE": (4, "Registration timed out: no reply received"),
    "INTERNAL_ERROR_STATE": (5, "Internal error"),
    "WRONG_CREDENTIALS_STATE": (6, "Registrar rejected the credentials"),
    "REGISTRAR_ERROR_STATE": (7, "Error reply from the registrar"),
    "NOT_FOUND": (0, "Registration not found"),
    # Not in Telzino's documentation; OpenSIPS' codes for a pending unREGISTER.
    "UNREGISTERING_STATE": (8, "Unregistering"),
    "AUTHENTICATING_UNREGISTER_STATE": (9, "Unregistering (authenticating)"),
}
CONTROL_PREFIX: Final = "/_fake"
STATUS_TIMES_KEPT: Final = 1000


@dataclass
class Fault:
    """What to do instead of (or before) answering normally."""

    status: int | None = None
    body: str | None = None
    content_type: str = "application/json"
    retry_after: str | None = None
    latency: float = 0.0
    # "close": drop the connection before answering; "mid_body": after headers.
    drop: str | None = None
    # Send the body in chunks without a Content-Length.
    chunked: bool = False
    # How many requests the fault applies to; None: until cleared.
    times: int | None = None
    # Where a redirect (a 3xx status) points.
    location: str | None = None


@dataclass
class Stats:
    """Request counters for the assertions of tests and benchmarks."""

    requests: Counter[str] = field(default_factory=Counter)
    # Answers by (endpoint, HTTP status), e.g. ("status", 401).
    responses: Counter[tuple[str, int]] = field(default_factory=Counter)
    # When the last status requests arrived (the fake's clock), in order. Only
    # the last ones: a long run (scripts/develop, the soak) must not grow.
    status_times: deque[float] = field(
        default_factory=lambda: deque(maxlen=STATUS_TIMES_KEPT)
    )
    # Every API request as it arrived (the fake's clock, path, whether the
    # rate limit admitted it), the last ones.
    request_times: deque[tuple[float, str, bool]] = field(
        default_factory=lambda: deque(maxlen=STATUS_TIMES_KEPT)
    )
    in_flight: int = 0
    max_in_flight: int = 0
    # Requests refused by the rate limit (answered 429 before any handler).
    rate_limited: int = 0


class FakeTelzino:
    """State and behaviour of the fake API, independent of how it is served."""

    def __init__(
        self,
        *,
        token_lifetime: int = 86400,
        latency: float = 0.0,
        clock: Callable[[], float] = time.time,
        date_from_clock: bool = True,
    ) -> None:
        """Start with no agents and one known client.

        `clock` is the server's: its times, rate-limit windows and tokens
        follow it, and so does the `Date` of its answers unless
        `date_from_clock` is off (a test clock that is not a wall clock).
        """
        self.clients: dict[str, str] = {CLIENT_ID: CLIENT_SECRET}
        self.tokens: dict[str, float] = {}
        # Every token ever issued, for tests that look for leaks.
        self.issued_tokens: list[str] = []
        self.token_lifetime = token_lifetime
        self.latency = latency
        self.clock = clock
        self.date_from_clock = date_from_clock
        self.agents: dict[str, FakeAgent] = {}
        # Agents whose state the registrant model drives (see registrant.py).
        self.registrants: dict[str, Registrant] = {}
        self.faults: dict[tuple[str, str | None], Fault] = {}
        # Close every connection after its answer. Frozen-time tests need it: the
        # server's keep-alive timer would otherwise close pooled connections
        # behind the client's back whenever the test moves time forward.
        self.close_connections = False
        # A rate limit over every API request (see ratelimit.py); None: none.
        self.rate_limit: RateLimit | Tiers | None = None
        # Pagination fields to leave out, to exercise clients' fallbacks.
        self.pagination_omit: set[str] = set()
        self.stats = Stats()
        self.app = self._build_app()
        # Set by serve(): what stop_listening() and start_listening() need.
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._address: tuple[str, int] = ("127.0.0.1", 0)

    # Python interface for tests ------------------------------------------------

    def add_agent(
        self, name: str, agent_id: str | None = None, **fields: Any
    ) -> FakeAgent:
        """Add an agent (registered unless `state` says otherwise)."""
        agent = FakeAgent(id=agent_id or str(uuid.uuid4()), name=name)
        self.agents[agent.id] = agent
        self.set_state(agent.id, fields.pop("state", agent.state), **fields)
        return agent

    def add_agents(
        self, count: int, prefix: str = "Agent", *, rng: random.Random | None = None
    ) -> list[FakeAgent]:
        """Add `count` registered agents with numbered names.

        With `rng`, their IDs come from it: a benchmark run again with the same
        seed reads the same agents in the same order (random IDs change the
        order of ties from run to run).
        """
        return [
            self.add_agent(
                f"{prefix} {index:03d}",
                None
                if rng is None
                else str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            )
            for index in range(count)
        ]

    def set_state(self, agent_id: str, state: str, **fields: Any) -> None:
        """Set an agent's registration state, with consistent times and message."""
        agent = self.agents[agent_id]
        agent.state = state
        now = self.clock()
        agent.last_register_sent = now if state != "NOT_FOUND" else None
        agent.expires = (
            now + agent.registration_timeout if state == "REGISTERED_STATE" else None
        )
        agent.error_message = None
        agent.state_code = None
        for name, value in fields.items():
            if not hasattr(agent, name):
                raise AttributeError(f"FakeAgent has no field {name!r}")
            setattr(agent, name, value)
        if (registrant := self.registrants.get(agent_id)) is not None:
            # Set by hand: the model goes on from this state.
            registrant.pending.clear()
            registrant.take_over(agent, now)
            registrant.synced_at = now

    def simulate(self, agent_id: str, **params: Any) -> Registrant:
        """Let the registrant model drive an agent's registration from now on."""
        agent = self.agents[agent_id]
        now = self.clock()
        registrant = Registrant(synced_at=now, **params)
        if agent.state == "REGISTERED_STATE":
            # As if registered at the last tick, the way OpenSIPS would have;
            # the 200 OK came back a moment after the REGISTER.
            sent = registrant.next_tick(now) - registrant.timer_interval
            agent.last_register_sent = math.floor(sent)
            registrant.take_over(agent, sent + 0.1)
        self.registrants[agent_id] = registrant
        return registrant

    def add_token(self, token: str | None = None, lifetime: float | None = None) -> str:
        """Issue an access token, as a user would paste one."""
        token = token or secrets.token_urlsafe(24)
        self.issued_tokens.append(token)
        self.tokens[token] = self.clock() + (
            self.token_lifetime if lifetime is None else lifetime
        )
        return token

    def expire_tokens(self) -> None:
        """Make every issued token invalid, as if all had expired."""
        self.tokens.clear()

    def inject(self, endpoint: str, agent_id: str | None = None, **fault: Any) -> Fault:
        """Inject a fault for an endpoint, optionally for one agent only."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        self.faults[endpoint, agent_id] = injected = Fault(**fault)
        return injected

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self.faults.clear()

    def reset_stats(self) -> None:
        """Zero the request counters."""
        self.stats = Stats()

    async def stop_listening(self) -> None:
        """Close the port: connections are refused until start_listening()."""
        assert self._site is not None
        await self._site.stop()

    async def start_listening(self) -> None:
        """Listen again on the same address."""
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, *self._address)
        await self._site.start()

    # HTTP -----------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._count_middleware])
        app.router.add_post("/oauth/token", self._handle_token)
        app.router.add_get("/v1/agents", self._handle_agents)
        app.router.add_get("/v1/agents/{agent_id}", self._handle_agent)
        app.router.add_get(
            "/v1/agents/{agent_id}/sip/registration/status", self._handle_status
        )
        _add_control_routes(app, self)
        return app

    @web.middleware
    async def _count_middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        budget: dict[str, str] = {}
        allowed = True
        if self.rate_limit is not None:
            allowed, budget = self.rate_limit.admit(self.clock())
        self.stats.request_times.append((self.clock(), request.path, allowed))
        if not allowed:
            # Every request counts, the token and agent list included.
            self.stats.rate_limited += 1
            return web.json_response(
                {"error": "Too many requests"},
                status=429,
                headers={**budget, **self._date()},
            )
        stats = self.stats
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            response = await handler(request)
        finally:
            stats.in_flight -= 1
        if endpoint := request.get("endpoint"):
            stats.responses[endpoint, response.status] += 1
        if not response.prepared:
            response.headers.update(self._date())
        if budget and not response.prepared:
            response.headers.update(budget)
        if self.close_connections and not response.prepared:
            response.force_close()
        return response

    def _date(self) -> dict[str, str]:
        """Return the `Date` header of an answer: the server's clock, as a real one shows it."""
        if not self.date_from_clock:
            return {}  # aiohttp's own: this host's clock
        return {"Date": formatdate(self.clock(), usegmt=True)}

    async def _apply_fault(
        self, request: web.Request, endpoint: str, agent_id: str | None = None
    ) -> web.StreamResponse | None:
        """Count the request, wait the latency, answer with a fault if one is set."""
        self.stats.requests[endpoint] += 1
        if endpoint == STATUS:
            self.stats.status_times.append(self.clock())
        request["endpoint"] = endpoint
        key = (endpoint, agent_id)
        fault = self.faults.get(key) or self.faults.get((endpoint, None))
        if fault is not None and fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                self.faults = {k: v for k, v in self.faults.items() if v is not fault}
        latency = self.latency + (fault.latency if fault else 0.0)
        if latency:
            await asyncio.sleep(latency)
        if fault is None or (
            fault.status is None and fault.body is None and not fault.drop
        ):
            return None
        if fault.drop == "close":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        if fault.location:
            headers["Location"] = fault.location
        body = (fault.body if fault.body is not None else "").encode()
        if fault.chunked:
            response = web.StreamResponse(status=fault.status or 200, headers=headers)
            response.content_type = fault.content_type
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(body), 65536):
                await response.write(body[start : start + 65536])
            await response.write_eof()
            return response
        if fault.drop == "mid_body":
            response = web.StreamResponse(status=fault.status or 200, headers=headers)
            response.content_length = len(body) + 1000
            response.content_type = fault.content_type
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            assert request.transport is not None
            request.transport.close()
            return response
        return web.Response(
            status=fault.status or 200,
            body=body,
            headers={**headers, "Content-Type": fault.content_type},
        )

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self.tokens.get(token)
        return scheme == "Bearer" and expiry is not None and self.clock() < expiry

    async def _handle_token(self, request: web.Request) -> web.StreamResponse:
        if (faulted := await self._apply_fault(request, TOKEN)) is not None:
            return faulted
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid_request")
        if not isinstance(body, dict) or body.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type")
        if body.get("audience") != "https://api.telzino.com/":
            return _error(403, "invalid_audience")
        client_id = body.get("client_id")
        if not isinstance(client_id, str) or self.clients.get(client_id) != body.get(
            "client_secret"
        ):
            return _error(401, "access_denied")
        token = self.add_token()
        return web.json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
            }
        )

    async def _handle_agents(self, request: web.Request) -> web.StreamResponse:
        if (faulted := await self._apply_fault(request, AGENTS)) is not None:
            return faulted
        if not self._authorized(request):
            return _error(401, "Unauthorized")
        try:
            page = int(request.query.get("page", "1"))
            limit = int(request.query.get("limit", "10"))
        except ValueError:
            return _error(400, "Invalid parameters")
        if page < 1 or not 1 <= limit <= 100:
            return _error(400, "Invalid parameters")
        agents = list(self.agents.values())
        total_pages = max(math.ceil(len(agents) / limit), 1)
        chunk = agents[(page - 1) * limit : page * limit]
        pagination = {
            "page": page,
            "limit": limit,
            "total": len(agents),
            "totalPages": total_pages,
            "hasNext": page < total_pages,
            "hasPrev": page > 1,
        }
        body: dict[str, Any] = {"data": [self._agent_json(agent) for agent in chunk]}
        if "pagination" not in self.pagination_omit:
            body["pagination"] = {
                key: value
                for key, value in pagination.items()
                if key not in self.pagination_omit
            }
        return web.json_response(body)

    async def _handle_agent(self, request: web.Request) -> web.StreamResponse:
        agent_id = request.match_info["agent_id"]
        if (faulted := await self._apply_fault(request, AGENT, agent_id)) is not None:
            return faulted
        if not self._authorized(request):
            return _error(401, "Unauthorized")
        if (agent := self.agents.get(agent_id)) is None:
            return _error(404, "Agent not found")
        return web.json_response({"data": self._agent_json(agent)})

    async def _handle_status(self, request: web.Request) -> web.StreamResponse:
        agent_id = request.match_info["agent_id"]
        if (faulted := await self._apply_fault(request, STATUS, agent_id)) is not None:
            return faulted
        if not self._authorized(request):
            return _error(401, "Unauthorized")
        if (agent := self.agents.get(agent_id)) is None:
            return _error(404, "Agent not found")
        if (registrant := self.registrants.get(agent_id)) is not None:
            registrant.sync(agent, self.clock())
        return web.json_response({"success": True, "data": self.status_json(agent)})

    def _agent_json(self, agent: FakeAgent) -> dict[str, Any]:
        return {
            "id": agent.id,
            "name": agent.name,
            "organization_id": agent.organization_id,
            "status": agent.status,
            "is_active": agent.status == "active",
            "updated_at": "2026-11-01T00:00:00Z",
        }

    def status_json(self, agent: FakeAgent) -> dict[str, Any]:
        """Return the `data` object of the status endpoint for an agent."""
        code, message = STATES.get(agent.state, (agent.state_code or 9, "Unknown"))
        if agent.state_code is not None:
            code = agent.state_code
        data: dict[str, Any] = {
            "state": agent.state,
            "stateCode": code,
            "enabled": "yes" if agent.enabled else "no",
            "expires": int(agent.expires) if agent.expires else 0,
            "registrationTimeout": str(agent.registration_timeout),
            "isRegistered": agent.state == "REGISTERED_STATE",
            "errorMessage": agent.error_message or message,
        }
        if agent.last_register_sent is not None:
            data["lastRegisterSent"] = (
                datetime.fromtimestamp(agent.last_register_sent, UTC)
                .isoformat()
                .replace("+00:00", "Z")
            )
        return data


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _add_control_routes(app: web.Application, fake: FakeTelzino) -> None:
    """HTTP control API, for driving the fake behind a running Home Assistant."""

    async def get_state(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "agents": [asdict(agent) for agent in fake.agents.values()],
                "requests": dict(fake.stats.requests),
                "max_in_flight": fake.stats.max_in_flight,
                "faults": [
                    {"endpoint": endpoint, "agent_id": agent_id, **asdict(fault)}
                    for (endpoint, agent_id), fault in fake.faults.items()
                ],
            }
        )

    async def post_agent(request: web.Request) -> web.Response:
        body = await request.json()
        agent = fake.add_agent(**body)
        return web.json_response(asdict(agent), status=201)

    async def post_state(request: web.Request) -> web.Response:
        agent_id = request.match_info["agent_id"]
        if agent_id not in fake.agents:
            return _error(404, "no such agent")
        body = await request.json()
        fake.set_state(agent_id, **body)
        return web.json_response(asdict(fake.agents[agent_id]))

    async def post_registrant(request: web.Request) -> web.Response:
        """Drive an agent by the registrant model, or act on its registration.

        Body: {"behaviour": one of BEHAVIOURS} and/or {"action": "disable" |
        "enable" | "reconfigure"}; the first call attaches the model (with
        optional "timer_interval", "phase", "challenge", "expires_reports",
        "late_tick_share").
        """
        agent_id = request.match_info["agent_id"]
        if (agent := fake.agents.get(agent_id)) is None:
            return _error(404, "no such agent")
        body = await request.json()
        behaviour = body.pop("behaviour", None)
        action = body.pop("action", None)
        if behaviour is not None and behaviour not in BEHAVIOURS:
            return _error(400, f"behaviour must be one of {', '.join(BEHAVIOURS)}")
        if action not in (None, "disable", "enable", "reconfigure"):
            return _error(400, "action must be disable, enable or reconfigure")
        registrant = fake.registrants.get(agent_id)
        if registrant is None:
            try:
                registrant = fake.simulate(agent_id, **body)
            except TypeError as err:
                return _error(400, str(err))
        now = fake.clock()
        if behaviour is not None:
            registrant.set_behaviour(agent, behaviour, now)
        if action is not None:
            getattr(registrant, action)(agent, now)
        return web.json_response({**asdict(agent), "behaviour": registrant.behaviour})

    async def delete_agent(request: web.Request) -> web.Response:
        fake.agents.pop(request.match_info["agent_id"], None)
        return web.Response(status=204)

    async def post_fault(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            fake.inject(**body)
        except (TypeError, ValueError) as err:
            return _error(400, str(err))
        return web.Response(status=204)

    async def delete_faults(request: web.Request) -> web.Response:
        fake.clear_faults()
        return web.Response(status=204)

    async def post_expire_tokens(request: web.Request) -> web.Response:
        fake.expire_tokens()
        return web.Response(status=204)

    async def post_rate_limit(request: web.Request) -> web.Response:
        """Apply a rate limit: {"kind", "limit", "window", "retry_after", "headers"}."""
        try:
            fake.rate_limit = RateLimit(**await request.json())
        except (TypeError, ValueError) as err:
            return _error(400, str(err))
        return web.Response(status=204)

    async def delete_rate_limit(request: web.Request) -> web.Response:
        fake.rate_limit = None
        return web.Response(status=204)

    async def post_reset_stats(request: web.Request) -> web.Response:
        fake.reset_stats()
        return web.Response(status=204)

    app.router.add_get(f"{CONTROL_PREFIX}/state", get_state)
    app.router.add_post(f"{CONTROL_PREFIX}/agents", post_agent)
    app.router.add_post(f"{CONTROL_PREFIX}/agents/{{agent_id}}/state", post_state)
    app.router.add_post(
        f"{CONTROL_PREFIX}/agents/{{agent_id}}/registrant", post_registrant
    )
    app.router.add_delete(f"{CONTROL_PREFIX}/agents/{{agent_id}}", delete_agent)
    app.router.add_post(f"{CONTROL_PREFIX}/faults", post_fault)
    app.router.add_delete(f"{CONTROL_PREFIX}/faults", delete_faults)
    app.router.add_post(f"{CONTROL_PREFIX}/tokens/expire", post_expire_tokens)
    app.router.add_post(f"{CONTROL_PREFIX}/stats/reset", post_reset_stats)
    app.router.add_post(f"{CONTROL_PREFIX}/rate_limit", post_rate_limit)
    app.router.add_delete(f"{CONTROL_PREFIX}/rate_limit", delete_rate_limit)


@asynccontextmanager
async def serve(
    fake: FakeTelzino, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve `fake` on host:port (0: any free port); yield its base URL."""
    runner = web.AppRunner(fake.app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server  # noqa: SLF001  # the only way to learn an OS-chosen port
    assert isinstance(server, asyncio.Server)
    bound_port = server.sockets[0].getsockname()[1]
    fake._runner, fake._site, fake._address = runner, site, (host, bound_port)  # noqa: SLF001
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        await runner.cleanup()
