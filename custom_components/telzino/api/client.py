"""The Telzino API client: one set of credentials, one account.

Knows nothing about Home Assistant: it speaks the API described in the Telzino
documentation over aiohttp and raises the exceptions of `.exceptions`.
"""

import asyncio
from collections.abc import Callable, Iterable, Mapping
import ipaddress
import json
import math
import re
import time
from types import TracebackType
from typing import Any, Final, Self, cast
from urllib.parse import urlsplit
import uuid

import aiohttp

from .budget import RequestBudget, retry_after
from .exceptions import (
    TelzinoAuthenticationError,
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
)
from .models import (
    AccessToken,
    Agent,
    ClientCredentials,
    Credentials,
    RegistrationStatus,
)
from .server_clock import ServerClock

DEFAULT_API_URL: Final = "https://api.telzino.com"
TOKEN_AUDIENCE: Final = "https://api.telzino.com/"  # noqa: S105  # not a secret
DEFAULT_REQUEST_TIMEOUT: Final = 15.0
# Ten requests in flight keep 100 agents under a second at 100 ms latency while
# staying polite to an API whose rate limits are not published.
DEFAULT_MAX_CONCURRENCY: Final = 10
AGENTS_PAGE_LIMIT: Final = 100
# Renew a token this long before it expires, so that no request races expiry.
TOKEN_RENEW_MARGIN: Final = 300.0
# A status answer is a few hundred bytes and an agents page a few hundred kB;
# anything far larger is not an answer to trust or to hold in memory.
MAX_BODY_BYTES: Final = 1024 * 1024
MAX_AGENTS_PAGE_BYTES: Final = 16 * 1024 * 1024
# Guards pagination against a server that never says it is done.
MAX_AGENT_PAGES: Final = 1000
_ACCEPT_JSON: Final = {"Accept": "application/json"}
_CANONICAL_UUID: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


def validate_api_url(url: str) -> str:
    """Return the normalized base URL, or raise TelzinoInvalidUrlError.

    The token travels with every request, so only https is accepted, except on
    loopback hosts where a local test server has no certificate.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as err:
        raise TelzinoInvalidUrlError("API URL is not a valid URL") from err
    host = parts.hostname or ""
    if not host or parts.query or parts.fragment or parts.username or parts.password:
        raise TelzinoInvalidUrlError("API URL must be scheme://host[:port][/path]")
    if parts.scheme == "http" and not _is_loopback(host):
        raise TelzinoInvalidUrlError("API URL must use https")
    if parts.scheme not in ("http", "https"):
        raise TelzinoInvalidUrlError("API URL must use https")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def validate_agent_id(agent_id: str) -> str:
    """Return the agent ID in canonical form, or raise TelzinoInvalidAgentIdError."""
    if isinstance(agent_id, str) and _CANONICAL_UUID.fullmatch(agent_id):
        # Every poll checks every ID: the common case costs no UUID object.
        return agent_id
    try:
        return str(uuid.UUID(agent_id.strip()))
    except (ValueError, AttributeError) as err:
        raise TelzinoInvalidAgentIdError(agent_id) from err


class TelzinoClient:
    """Talks to the Telzino API with one set of credentials."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        session: aiohttp.ClientSession | None = None,
        api_url: str = DEFAULT_API_URL,
        request_timeout: float | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Validate the URL now so that a bad one fails before any request.

        Without a session the client opens its own on first use; `close()` (or
        leaving `async with`) closes that one, never a session passed in.
        """
        if max_concurrency < 1:
            raise TelzinoInvalidInputError("max_concurrency must be at least 1")
        self._session = session
        self._close_session = False
        self._credentials = credentials
        self._api_url = validate_api_url(api_url)
        self._timeout = aiohttp.ClientTimeout(
            total=request_timeout or DEFAULT_REQUEST_TIMEOUT
        )
        self._max_concurrency = max_concurrency
        # Looked up now, not at import, so that a frozen test clock applies.
        self._clock = clock or time.monotonic
        self._token: str | None = (
            credentials.token if isinstance(credentials, AccessToken) else None
        )
        self._token_renew_at = math.inf
        self._token_lock = asyncio.Lock()
        self._headers_of: tuple[str | None, dict[str, str]] = (None, {})
        # Every request passes it: nothing leaves while the API asked to wait.
        self.budget = RequestBudget(self._clock)
        # The server's clock, from its answers' Date headers.
        self.server_clock = ServerClock()
        self._status_endpoints: dict[str, _StatusEndpoint] = {}
        # The pages the last agent list took (what the next one will take).
        self.agent_list_pages = 1

    async def close(self) -> None:
        """Close the session the client opened itself."""
        if self._session is not None and self._close_session:
            await self._session.close()
            self._session = None
            self._close_session = False

    async def __aenter__(self) -> Self:
        """Use the client as an async context manager."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the client's own session on the way out."""
        await self.close()

    @property
    def api_url(self) -> str:
        """The normalized API base URL."""
        return self._api_url

    @property
    def max_concurrency(self) -> int:
        """How many status requests one batch keeps in flight at most."""
        return self._max_concurrency

    async def authenticate(self) -> None:
        """Make sure a token is at hand; with client credentials this checks them."""
        await self._get_token()

    async def get_agents(self) -> list[Agent]:
        """Return every agent the credentials can see, following all pages."""
        agents: list[Agent] = []
        page = 1
        while True:
            body = await self._request_json(
                f"/v1/agents?page={page}&limit={AGENTS_PAGE_LIMIT}",
                max_body=MAX_AGENTS_PAGE_BYTES,
                # Its pages go in a burst, not at the budget's pace.
                paced=False,
            )
            items = body.get("data")
            if not isinstance(items, list):
                raise TelzinoInvalidResponseError("Agent list has no data array")
            agents.extend(Agent.from_api(item) for item in items)
            if not items or not _has_next_page(body.get("pagination"), page, items):
                self.agent_list_pages = page
                return agents
            if page >= MAX_AGENT_PAGES:
                raise TelzinoInvalidResponseError("Agent list does not end")
            page += 1

    async def get_agent(self, agent_id: str) -> Agent:
        """Return one agent."""
        agent_id = validate_agent_id(agent_id)
        body = await self._request_json(f"/v1/agents/{agent_id}")
        return Agent.from_api(body.get("data"))

    async def get_registration_status(self, agent_id: str) -> RegistrationStatus:
        """Return one agent's SIP registration status."""
        endpoint = self._status_endpoint(agent_id)
        return endpoint.read(await self._get(endpoint.url))

    async def get_registration_statuses(
        self, agent_ids: Iterable[str]
    ) -> dict[str, RegistrationStatus | TelzinoError]:
        """Return each agent's status or that agent's error, fetched concurrently.

        One agent's failure never fails the others. Once the API rate limits us
        or rejects the credentials, the requests not yet sent are not sent: they
        get the same error instead of adding load to an API that said stop.
        """
        ids = list(dict.fromkeys(agent_ids))
        semaphore = asyncio.Semaphore(self._max_concurrency)
        stop: list[TelzinoError] = []

        async def fetch(agent_id: str) -> RegistrationStatus | TelzinoError:
            async with semaphore:
                if stop:
                    return stop[0]
                try:
                    # What get_registration_status does, one coroutine less
                    # for each of the batch's requests.
                    endpoint = self._status_endpoint(agent_id)
                    return endpoint.read(await self._get(endpoint.url))
                except (TelzinoRateLimitedError, TelzinoAuthenticationError) as err:
                    stop.append(err)
                    return err
                except TelzinoError as err:
                    return err

        results = await asyncio.gather(*(fetch(agent_id) for agent_id in ids))
        return dict(zip(ids, results, strict=True))

    def _status_endpoint(self, agent_id: str) -> _StatusEndpoint:
        """Return an agent's status endpoint; raise for an ID that is not a UUID."""
        if (endpoint := self._status_endpoints.get(agent_id)) is None:
            path = f"/v1/agents/{validate_agent_id(agent_id)}/sip/registration/status"
            url = f"{self._api_url}{path}"
            endpoint = _StatusEndpoint(url, self._what("GET", url))
            self._status_endpoints[agent_id] = endpoint
        return endpoint

    async def _request_json(
        self, path: str, *, max_body: int = MAX_BODY_BYTES, paced: bool = True
    ) -> dict[str, Any]:
        """GET an API path and return its JSON object."""
        url = f"{self._api_url}{path}"
        return _json_object(
            await self._get(url, max_body=max_body, paced=paced),
            self._what("GET", url),
        )

    async def _get(
        self, url: str, *, max_body: int = MAX_BODY_BYTES, paced: bool = True
    ) -> bytes:
        """GET an API URL with a bearer token and return the body.

        A token from client credentials that the API rejects (revoked, or
        expired early) is renewed, and the request sent once more. Every status
        request runs in this one coroutine: a usable token is taken without an
        await, and a body of announced length is read here.
        """
        stale: str | None = None
        while True:
            token = (
                cast("str", self._token)
                if self._token_usable(stale)
                else await self._get_token(stale)
            )
            self.budget.check()
            sent = time.time()
            try:
                async with self._http().get(
                    url,
                    headers=self._headers(token),
                    timeout=self._timeout,
                    # A redirect could carry the bearer token to another host.
                    allow_redirects=False,
                ) as response:
                    self.budget.record(response.status, response.headers, learn=paced)
                    self.server_clock.record(
                        response.headers.get("Date"), sent, time.time()
                    )
                    if (
                        response.status == 401
                        and stale is None
                        and not isinstance(self._credentials, AccessToken)
                    ):
                        stale = token
                        continue
                    if (
                        200 <= response.status < 300
                        and (length := response.content_length) is not None
                        and length <= max_body
                    ):
                        # aiohttp reads no further than the announced length.
                        return await response.read()
                    return await _read_checked(
                        response, max_body, self._what("GET", url)
                    )
            except (TimeoutError, aiohttp.ClientError) as err:
                raise _connection_error(err, self._what("GET", url)) from err

    def _headers(self, token: str) -> dict[str, str]:
        """Return the request headers for a token, built once per token."""
        if self._headers_of[0] != token:
            self._headers_of = (
                token,
                {"Accept": "application/json", "Authorization": f"Bearer {token}"},
            )
        return self._headers_of[1]

    async def _get_token(self, stale: str | None = None) -> str:
        """Return a valid token; concurrent callers share one token request."""
        if isinstance(self._credentials, AccessToken):
            return self._credentials.token
        async with self._token_lock:
            # Another caller may have renewed it while this one waited.
            if self._token_usable(stale):
                return self._token  # type: ignore[return-value]
            self._token = None
            token, lifetime = await self._fetch_token(self._credentials)
            self._token = token
            self._token_renew_at = self._clock() + max(
                lifetime - min(TOKEN_RENEW_MARGIN, lifetime / 10), 0.0
            )
            return token

    def _token_usable(self, stale: str | None) -> bool:
        return (
            self._token is not None
            and self._token != stale
            and self._clock() < self._token_renew_at
        )

    async def _fetch_token(self, credentials: ClientCredentials) -> tuple[str, float]:
        what = "POST /oauth/token"
        self.budget.check()
        sent = time.time()
        try:
            async with self._http().post(
                f"{self._api_url}/oauth/token",
                headers=_ACCEPT_JSON,
                json={
                    "client_id": credentials.client_id,
                    "client_secret": credentials.client_secret,
                    "audience": TOKEN_AUDIENCE,
                    "grant_type": "client_credentials",
                },
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                self.budget.record(response.status, response.headers)
                self.server_clock.record(
                    response.headers.get("Date"), sent, time.time()
                )
                raw = await _read_checked(response, MAX_BODY_BYTES, what)
        except (TimeoutError, aiohttp.ClientError) as err:
            raise _connection_error(err, what) from err
        except (TelzinoForbiddenError, TelzinoRequestError) as err:
            # The token endpoint answers bad credentials with 400, 401 or 403.
            raise TelzinoAuthenticationError(
                "Client credentials were rejected"
            ) from err
        body = _json_object(raw, what)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise TelzinoInvalidResponseError("Token response has no access_token")
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)):
            lifetime = 3600.0
        return token, float(lifetime)

    def _what(self, method: str, url: str) -> str:
        """Name a request in messages: method and API path, never a query."""
        return f"{method} {url.removeprefix(self._api_url).partition('?')[0]}"

    def _http(self) -> aiohttp.ClientSession:
        """Return the session, opening the client's own on first use."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._close_session = True
        return self._session


class _StatusEndpoint:
    """One agent's status URL, and its last answer with what it parsed to."""

    __slots__ = ("_last_body", "_last_status", "url", "what")

    def __init__(self, url: str, what: str) -> None:
        self.url = url
        self.what = what
        self._last_body: bytes | None = None
        self._last_status: RegistrationStatus | None = None

    def read(self, raw: bytes) -> RegistrationStatus:
        """Return the status a body of this endpoint holds."""
        if raw == self._last_body:
            # Most polls change nothing: the same answer parses to the same
            # (immutable) status, so it is not parsed again.
            return cast("RegistrationStatus", self._last_status)
        body = _json_object(raw, self.what)
        if body.get("success") is False:
            raise TelzinoInvalidResponseError("API reported the status as failed")
        status = RegistrationStatus.from_api(body.get("data"))
        self._last_body, self._last_status = raw, status
        return status


def _connection_error(
    err: TimeoutError | aiohttp.ClientError, what: str
) -> TelzinoConnectionError:
    if isinstance(err, TimeoutError):
        return TelzinoConnectionError(f"{what}: timed out")
    return TelzinoConnectionError(f"{what}: connection failed ({type(err).__name__})")


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as err:
        raise TelzinoInvalidResponseError(f"{what}: response is not JSON") from err
    if not isinstance(body, dict):
        raise TelzinoInvalidResponseError(f"{what}: response is not a JSON object")
    return body


def _raise_for_status(response: aiohttp.ClientResponse, what: str) -> None:
    status = response.status
    if 200 <= status < 300:
        return
    message = f"{what}: HTTP {status}"
    if status == 401:
        raise TelzinoAuthenticationError(message)
    if status == 403:
        raise TelzinoForbiddenError(message)
    if status == 404:
        raise TelzinoNotFoundError(message)
    if status == 429:
        raise TelzinoRateLimitedError(message, retry_after(response.headers))
    if status >= 500:
        raise TelzinoConnectionError(message)
    raise TelzinoRequestError(message)


async def _read_checked(
    response: aiohttp.ClientResponse, max_body: int, what: str
) -> bytes:
    """Raise for an error status; return a body no larger than max_body."""
    _raise_for_status(response, what)
    if (length := response.content_length) is not None:
        if length > max_body:
            raise TelzinoInvalidResponseError(f"{what}: response is too large")
        return await response.read()
    raw = await response.content.read(max_body + 1)
    while len(raw) <= max_body and (chunk := await response.content.read(max_body)):
        raw += chunk
    if len(raw) > max_body:
        raise TelzinoInvalidResponseError(f"{what}: response is too large")
    return raw


def _has_next_page(pagination: Any, page: int, items: list[Any]) -> bool:
    if isinstance(pagination, Mapping):
        has_next = pagination.get("hasNext")
        if isinstance(has_next, bool):
            return has_next
        total_pages = pagination.get("totalPages")
        if isinstance(total_pages, int) and not isinstance(total_pages, bool):
            return page < total_pages
    return len(items) >= AGENTS_PAGE_LIMIT


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
