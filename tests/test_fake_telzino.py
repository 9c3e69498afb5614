"""The fake Telzino API's control interface, used to drive a running Home Assistant."""

import ast
import asyncio
import graphlib
import json
from pathlib import Path
import random
import sys

import aiohttp
import pytest

from custom_components.telzino.api import API_STATE_NAMES, validate_agent_id
import scripts.fake_telzino
from scripts.fake_telzino import CLIENT_ID, STATES, FakeTelzino

pytestmark = pytest.mark.ha_free


async def test_http_control_interface(
    fake: FakeTelzino, fake_url: str, session: aiohttp.ClientSession
) -> None:
    """The fake's HTTP control API adds agents, sets states and injects faults."""
    control = f"{fake_url}/_fake"
    async with session.post(f"{control}/agents", json={"name": "Lobby"}) as response:
        assert response.status == 201
        agent_id = (await response.json())["id"]
    async with session.post(
        f"{control}/agents/{agent_id}/state", json={"state": "WRONG_CREDENTIALS_STATE"}
    ) as response:
        assert (await response.json())["state"] == "WRONG_CREDENTIALS_STATE"
    async with session.post(
        f"{control}/agents/unknown/state", json={"state": "NOT_FOUND"}
    ) as response:
        assert response.status == 404
    async with session.post(
        f"{control}/faults", json={"endpoint": "status", "status": 503, "times": 1}
    ) as response:
        assert response.status == 204
    async with session.post(f"{control}/faults", json={"endpoint": "nope"}) as response:
        assert response.status == 400

    token = fake.add_token()
    headers = {"Authorization": f"Bearer {token}"}
    status_url = f"{fake_url}/v1/agents/{agent_id}/sip/registration/status"
    async with session.get(status_url, headers=headers) as response:
        assert response.status == 503  # the injected fault, once
    async with session.get(status_url, headers=headers) as response:
        body = await response.json()
        assert body["data"]["state"] == "WRONG_CREDENTIALS_STATE"
        assert body["data"]["isRegistered"] is False

    async with session.get(f"{control}/state") as response:
        state = await response.json()
    assert state["requests"] == {"status": 2}
    assert state["faults"] == []
    assert [agent["name"] for agent in state["agents"]] == ["Lobby"]

    async with session.post(f"{control}/tokens/expire") as response:
        assert response.status == 204
    async with session.get(status_url, headers=headers) as response:
        assert response.status == 401
    async with session.post(
        f"{control}/faults", json={"endpoint": "agents", "status": 500}
    ) as response:
        assert response.status == 204
    assert fake.faults
    async with session.delete(f"{control}/faults") as response:
        assert response.status == 204
    assert fake.faults == {}
    async with session.post(f"{control}/stats/reset") as response:
        assert response.status == 204
    assert not fake.stats.requests
    async with session.delete(f"{control}/agents/{agent_id}") as response:
        assert response.status == 204
    assert fake.agents == {}


async def test_token_endpoint_validates_the_request(
    fake: FakeTelzino, fake_url: str, session: aiohttp.ClientSession
) -> None:
    """Token endpoint validates the request."""
    url = f"{fake_url}/oauth/token"
    good = {
        "client_id": CLIENT_ID,
        "client_secret": "test-client-secret",
        "audience": "https://api.telzino.com/",
        "grant_type": "client_credentials",
    }
    for body, status in [
        (good, 200),
        ({**good, "grant_type": "password"}, 400),
        ({**good, "audience": "https://api.telzino.com"}, 403),
        ({**good, "client_secret": "wrong"}, 401),
    ]:
        async with session.post(url, json=body) as response:
            assert response.status == status
    async with session.post(url, data="not json") as response:
        assert response.status == 400


async def test_agent_list_rejects_bad_parameters(
    fake: FakeTelzino, fake_url: str, session: aiohttp.ClientSession
) -> None:
    """Agent list rejects bad parameters."""
    headers = {"Authorization": f"Bearer {fake.add_token()}"}
    for query in ("page=0", "limit=101", "page=x"):
        async with session.get(f"{fake_url}/v1/agents?{query}", headers=headers) as r:
            assert r.status == 400


def test_unknown_fields_and_endpoints_are_refused(fake: FakeTelzino) -> None:
    """Unknown fields and endpoints are refused."""
    agent = fake.add_agent("Lobby")
    with pytest.raises(AttributeError):
        fake.set_state(agent.id, "REGISTERED_STATE", colour="blue")
    with pytest.raises(ValueError, match="unknown endpoint"):
        fake.inject("nope")


async def test_runs_on_its_own(socket_enabled: None) -> None:
    """`python -m scripts.fake_telzino --demo` serves demo agents and prints how."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.fake_telzino",
        "--port",
        "0",
        "--demo",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        info = json.loads(line)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{info['url']}/_fake/state") as response,
        ):
            state = await response.json()
        assert len(state["agents"]) == 4
        assert info["client_id"] == CLIENT_ID
    finally:
        process.terminate()
        await process.wait()


def test_the_fake_serves_the_state_names_the_client_knows() -> None:
    """The fake's states are the API's documented names: the client's own table."""
    assert set(STATES) == set(API_STATE_NAMES)


def test_the_fake_modules_import_no_cycle() -> None:
    """Each module of the fake imports only modules below it: no import cycle."""
    package = Path(scripts.fake_telzino.__file__).parent
    imports: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        imports[path.stem] = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        }
    order = list(graphlib.TopologicalSorter(imports).static_order())
    assert {"agent", "registrant", "server"} <= set(order)


def test_seeded_agents_get_the_same_ids_in_every_run() -> None:
    """Agents added with a seeded generator get the same valid IDs each time.

    A benchmark run twice then reads the same agents in the same order.
    """
    runs = [
        [
            agent.id
            for agent in FakeTelzino().add_agents(3, rng=random.Random("seed"))  # noqa: S311
        ]
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 3
    assert all(validate_agent_id(agent_id) == agent_id for agent_id in runs[0])
    assert [agent.id for agent in FakeTelzino().add_agents(3)] != runs[0]
