"""Outage history: since when lost, how long, how reliable, across restarts.

Unit tests drive `AgentHistory` over 30 simulated days; the others run the
integration against the fake API under frozen time.
"""

from datetime import UTC, datetime, timedelta
import json
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import EVENT_HOMEASSISTANT_FINAL_WRITE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.telzino.const import CONF_AGENTS
from custom_components.telzino.history import (
    DAY,
    STORAGE_VERSION,
    AgentHistory,
    Reading,
    storage_key,
)
from scripts.fake_telzino import FRONT_DESK, SALES_LINE, FakeTelzino
from tests.common import make_entry, poll, setup_entry

LOST_SINCE = "sensor.front_desk_lost_since"
LAST_OUTAGE = "sensor.front_desk_last_outage"
UPTIME_24H = "sensor.front_desk_uptime_24_h"
UPTIME_7D = "sensor.front_desk_uptime_7_d"
UPTIME_30D = "sensor.front_desk_uptime_30_d"
LOSSES_24H = "sensor.front_desk_losses_24_h"
EVENT = "event.front_desk_registration"
POLL = 60.0
START = 1_795_000_000.0

# What a flapping agent may cost, at one reading per 60 s poll: a day of spans
# as read plus one merged span per hour for 30 days, and the stored file.
MAX_SPANS = 1440 + 30 * 24 + 1
MAX_STORED_BYTES = 128 * 1024


# AgentHistory alone ----------------------------------------------------------


def test_uptime_counts_observed_time_only() -> None:
    """Unobserved and disabled time is neither up nor down; no observation: unknown."""
    history = AgentHistory()
    assert history.uptime(DAY, START) is None
    history.observe(Reading.UP, START)
    history.observe(Reading.DOWN, START + 3 * 3600)  # up 3 h
    history.observe(Reading.UNOBSERVED, START + 4 * 3600)  # down 1 h
    history.observe(Reading.UP, START + 10 * 3600)  # 6 h unobserved
    history.observe(Reading.DISABLED, START + 11 * 3600)  # up 1 h, then disabled
    now = START + 20 * 3600
    assert history.uptime(DAY, now) == pytest.approx(4 / 5)
    assert history.observed(DAY, now) == pytest.approx(5 * 3600)
    # A window that holds only unobserved time knows nothing.
    assert history.uptime(3600, now) is None


def test_a_loss_lasts_across_unobserved_time_and_ends_when_up_or_disabled() -> None:
    """Lost since stays through a gap; the outage ends when up again or disabled."""
    history = AgentHistory()
    history.observe(Reading.UP, START)
    history.observe(Reading.DOWN, START + 100)
    history.observe(Reading.UNOBSERVED, START + 200)
    history.observe(Reading.DOWN, START + 900)
    assert history.lost_since == START + 100
    assert history.losses(DAY, START + 900) == 1
    history.observe(Reading.UP, START + 1000)
    assert history.lost_since is None
    assert history.last_outage == 900
    history.observe(Reading.DOWN, START + 2000)
    history.observe(Reading.DISABLED, START + 2030)
    assert history.lost_since is None
    assert history.last_outage == 30
    assert history.losses(DAY, START + 2030) == 2
    assert history.losses(DAY, START + DAY + 1500) == 1


def test_a_flapping_agent_stays_within_its_bounds_for_30_days() -> None:
    """Lost and back at every poll for 30 days: bounded spans and file, exact ratios."""
    history = AgentHistory()
    polls = int(30 * DAY / POLL)
    for index in range(polls):
        history.observe(
            Reading.UP if index % 2 == 0 else Reading.DOWN, START + index * POLL
        )
    now = START + polls * POLL
    assert len(history.spans) <= MAX_SPANS
    assert len(json.dumps(history.as_stored(now))) <= MAX_STORED_BYTES
    for window in (DAY, 7 * DAY, 29 * DAY):
        assert history.uptime(window, now) == pytest.approx(0.5, abs=1e-3)
    assert history.losses(DAY, now) == 720
    assert history.summary(now)["spans_merged_by_hour"] <= 30 * 24


def test_merging_by_hour_keeps_the_totals() -> None:
    """Ratios over whole hours are the same before and after old spans are merged."""
    history = AgentHistory()
    # Down for the first 10 minutes of every hour, for two days.
    for hour in range(48):
        history.observe(Reading.DOWN, START + hour * 3600)
        history.observe(Reading.UP, START + hour * 3600 + 600)
    now = START + 48 * 3600
    # The first day in 24 hourly spans, the last one as read (2 spans an hour).
    assert len(history.spans) == 24 + 48
    assert history.uptime(2 * DAY, now) == pytest.approx(5 / 6)
    assert history.uptime(DAY, now) == pytest.approx(5 / 6)
    loaded = AgentHistory.from_stored(history.as_stored(now), now)
    for window in (3600, DAY, 2 * DAY):
        assert loaded.uptime(window, now) == pytest.approx(history.uptime(window, now))


@pytest.mark.parametrize(
    "stored",
    [
        {
            "spans": [[2, 1, 0, 0]],
            "lost_since": None,
            "last_outage": None,
            "loss_starts": [],
        },
        {
            "spans": [[1, 2, -1, 0]],
            "lost_since": None,
            "last_outage": None,
            "loss_starts": [],
        },
        {
            "spans": [[1, 2, 1]],
            "lost_since": None,
            "last_outage": None,
            "loss_starts": [],
        },
        {"spans": "none", "lost_since": None, "last_outage": None, "loss_starts": []},
        {"spans": []},
    ],
)
def test_unusable_stored_history_is_refused(stored: dict[str, Any]) -> None:
    """Spans out of order, negative, short, or missing fields raise."""
    with pytest.raises((ValueError, TypeError, KeyError)):
        AgentHistory.from_stored(stored, START)


# In Home Assistant -----------------------------------------------------------


async def set_up(
    hass: HomeAssistant, fake: FakeTelzino, fake_url: str, agents: list[str]
) -> MockConfigEntry:
    """Set up the integration watching Front desk and Sales line."""
    fake.add_agent("Front desk", FRONT_DESK)
    fake.add_agent("Sales line", SALES_LINE)
    return await setup_entry(hass, make_entry(fake_url, agents))


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
) -> MockConfigEntry:
    """Set up the integration watching Front desk (Sales line exists, unwatched).

    After `freezer`, so that setup happens at the tests' frozen time.
    """
    return await set_up(hass, fake, fake_url, [FRONT_DESK])


def stored_agents(
    hass_storage: dict[str, Any], entry: MockConfigEntry
) -> dict[str, Any]:
    """Return the stored histories of an entry's agents."""
    agents: dict[str, Any] = hass_storage[storage_key(entry.entry_id)]["data"]["agents"]
    return agents


async def test_an_outage_shows_since_when_and_how_long(
    hass: HomeAssistant,
    fake: FakeTelzino,
    entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Lost since while lost; then the outage's length; uptime and losses over 24 h."""
    assert hass.states.get(LOST_SINCE).state == STATE_UNKNOWN
    assert hass.states.get(UPTIME_24H).state == STATE_UNKNOWN  # nothing observed yet
    await poll(hass, freezer, 3600)
    assert hass.states.get(UPTIME_24H).state == "100.0"

    fake.set_state(FRONT_DESK, "REGISTER_TIMEOUT_STATE")
    lost_at = dt_util.utcnow() + timedelta(seconds=POLL)
    await poll(hass, freezer)
    assert dt_util.parse_datetime(hass.states.get(LOST_SINCE).state) == lost_at.replace(
        microsecond=0
    )
    lost = hass.states.get(EVENT).attributes
    assert (lost["event_type"], lost["lost_since"]) == ("lost", lost_at.isoformat())
    await poll(hass, freezer, 1800)
    fake.set_state(FRONT_DESK, "REGISTERED_STATE")
    await poll(hass, freezer)

    assert hass.states.get(LOST_SINCE).state == STATE_UNKNOWN
    # Shown in minutes, the unit a person reads at a glance; stored in seconds.
    last_outage = hass.states.get(LAST_OUTAGE)
    assert (last_outage.state, last_outage.attributes["unit_of_measurement"]) == (
        str((1800 + 60) / 60),
        "min",
    )
    # The `registered` event says so too, for the blueprint's "back" message.
    back = hass.states.get(EVENT).attributes
    assert (back["event_type"], back["last_outage"], back["lost_since"]) == (
        "registered",
        1860,
        None,
    )
    # Up 1 h, down 31 min, up for the minute since.
    assert float(hass.states.get(UPTIME_24H).state) == pytest.approx(
        100 * 3660 / (3660 + 1860), abs=0.01
    )
    assert hass.states.get(LOSSES_24H).state == "1"
    # A day later the loss has left the 24-hour window; the outage's length stays.
    await poll(hass, freezer, DAY)
    assert hass.states.get(LOSSES_24H).state == "0"
    assert hass.states.get(UPTIME_24H).state == "100.0"
    assert hass.states.get(LAST_OUTAGE).state == "31.0"


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_the_30_day_window_reaches_back_29_days(
    hass: HomeAssistant,
    fake: FakeTelzino,
    entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A day lost 29 days ago still counts in Uptime (30 d), not in Uptime (7 d)."""
    fake.set_state(FRONT_DESK, "REGISTER_TIMEOUT_STATE")
    await poll(hass, freezer)
    await poll(hass, freezer, DAY)  # lost for a day
    fake.set_state(FRONT_DESK, "REGISTERED_STATE")
    await poll(hass, freezer)
    for _ in range(28):  # then up for 28 days, polled daily
        await poll(hass, freezer, DAY)

    # 29 days and a minute observed, the first day of it down.
    up, observed = 28 * DAY, 29 * DAY + POLL
    assert float(hass.states.get(UPTIME_30D).state) == pytest.approx(
        100 * up / observed, abs=0.01
    )
    assert hass.states.get(UPTIME_7D).state == "100.0"
    assert hass.states.get(UPTIME_24H).state == "100.0"


async def test_disabling_a_registration_is_not_a_loss(
    hass: HomeAssistant,
    fake: FakeTelzino,
    entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Unregistering, then disabled: no loss, and the disabled time is unobserved."""
    await poll(hass, freezer, 3600)
    fake.set_state(FRONT_DESK, "UNREGISTERING_STATE", state_code=8)
    await poll(hass, freezer)
    fake.set_state(FRONT_DESK, "NOT_REGISTERED_STATE", enabled=False)
    await poll(hass, freezer)
    await poll(hass, freezer, 3600)

    assert hass.states.get(LOST_SINCE).state == STATE_UNKNOWN
    assert hass.states.get(LOSSES_24H).state == "0"
    assert hass.states.get(UPTIME_24H).state == "100.0"
    history = entry.runtime_data.history.agents[FRONT_DESK]
    assert history.observed(DAY, dt_util.utcnow().timestamp()) == pytest.approx(3660)


async def test_an_api_outage_is_unobserved(
    hass: HomeAssistant,
    fake: FakeTelzino,
    entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """While the API cannot be read nothing is counted; the history stays available."""
    await poll(hass, freezer, 3600)
    fake.set_state(FRONT_DESK, "REGISTER_TIMEOUT_STATE")
    await poll(hass, freezer, 600)  # up 10 min more, then lost
    fake.inject("status", status=503)
    await poll(hass, freezer, 600)  # down 10 min, then unreadable
    await poll(hass, freezer, 5 * 3600)

    history = entry.runtime_data.history.agents[FRONT_DESK]
    now = dt_util.utcnow().timestamp()
    assert history.observed(DAY, now) == pytest.approx(3600 + 600 + 600)
    assert hass.states.get(UPTIME_24H).state == str(round(100 * 4200 / 4800, 2))
    assert hass.states.get(LOST_SINCE).state != STATE_UNKNOWN


async def test_a_restart_during_an_outage_keeps_lost_since(
    hass: HomeAssistant,
    fake: FakeTelzino,
    entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Lost since survives a stop; the stopped time counts as unobserved."""
    await poll(hass, freezer, 3600)
    fake.set_state(FRONT_DESK, "WRONG_CREDENTIALS_STATE")
    await poll(hass, freezer)
    lost_since = hass.states.get(LOST_SINCE).state
    await poll(hass, freezer, 1200)
    await hass.config_entries.async_unload(entry.entry_id)
    stored = stored_agents(hass_storage, entry)[FRONT_DESK]
    assert stored["lost_since"] is not None

    freezer.tick(timedelta(hours=3))  # stopped
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await poll(hass, freezer, 600)

    assert hass.states.get(LOST_SINCE).state == lost_since
    assert hass.states.get(LOSSES_24H).state == "1"  # the same loss, not a new one
    history = entry.runtime_data.history.agents[FRONT_DESK]
    now = dt_util.utcnow().timestamp()
    # Up 1 h, down 21 min before the stop and 10 min after: the 3 h are not counted.
    assert history.observed(DAY, now) == pytest.approx(3660 + 1200 + 600)
    assert history.uptime(DAY, now) == pytest.approx(3660 / (3660 + 1800))


async def test_home_assistant_stop_writes_the_history(
    hass: HomeAssistant,
    fake: FakeTelzino,
    entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Nothing changed for a while, yet the stop writes the observed time until then."""
    await poll(hass, freezer, 600)
    hass.bus.async_fire("homeassistant_stop")
    hass.bus.async_fire(EVENT_HOMEASSISTANT_FINAL_WRITE)
    await hass.async_block_till_done()
    spans = stored_agents(hass_storage, entry)[FRONT_DESK]["spans"]
    assert spans[-1][1] == pytest.approx(dt_util.utcnow().timestamp(), abs=0.1)
    assert sum(span[2] for span in spans) == pytest.approx(600, abs=0.2)


async def test_a_steady_agent_is_written_every_15_minutes(
    hass: HomeAssistant,
    fake: FakeTelzino,
    entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Nothing changes, yet the observed time reaches the file: a crash loses little."""
    for _ in range(20):  # 20 minutes of polls that change nothing
        await poll(hass, freezer)
    spans = stored_agents(hass_storage, entry)[FRONT_DESK]["spans"]
    up = sum(span[2] for span in spans)
    assert 14 * 60 <= up <= 20 * 60


async def test_a_corrupt_history_starts_afresh_with_one_warning(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stored history that makes no sense: setup goes on, one warning, new history."""
    entry = make_entry(fake_url, [FRONT_DESK])
    hass_storage[storage_key(entry.entry_id)] = {
        "version": STORAGE_VERSION,
        "minor_version": 1,
        "key": storage_key(entry.entry_id),
        "data": {"agents": {FRONT_DESK: {"spans": [[5, 1, 0, 0]]}}},
    }
    fake.add_agent("Front desk", FRONT_DESK)
    await setup_entry(hass, entry)

    warnings = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and "history" in r.message
    ]
    assert len(warnings) == 1
    assert "starting a new one" in warnings[0].message
    assert hass.states.get(LOST_SINCE).state == STATE_UNKNOWN
    assert entry.runtime_data.history.agents[FRONT_DESK].spans == []


async def test_a_version_1_history_is_migrated(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Intervals of version 1 become spans; an ongoing loss goes on."""
    entry = make_entry(fake_url, [FRONT_DESK])
    now = dt_util.utcnow().timestamp()
    hass_storage[storage_key(entry.entry_id)] = {
        "version": 1,
        "key": storage_key(entry.entry_id),
        "data": {
            "agents": {
                FRONT_DESK: {
                    "intervals": [
                        [now - 7200, now - 3600, True],
                        [now - 3600, now - 600, False],
                    ],
                    "lost_since": now - 3600,
                }
            }
        },
    }
    fake.add_agent("Front desk", FRONT_DESK, state="REGISTER_TIMEOUT_STATE")
    await setup_entry(hass, entry)

    assert dt_util.parse_datetime(
        hass.states.get(LOST_SINCE).state
    ) == datetime.fromtimestamp(now - 3600, UTC).replace(microsecond=0)
    history = entry.runtime_data.history.agents[FRONT_DESK]
    assert history.uptime(DAY, now) == pytest.approx(3600 / (3600 + 3000))
    await hass.config_entries.async_unload(entry.entry_id)
    assert hass_storage[storage_key(entry.entry_id)]["version"] == STORAGE_VERSION


async def test_removing_an_agent_or_the_entry_deletes_its_history(
    hass: HomeAssistant,
    fake: FakeTelzino,
    fake_url: str,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """An agent no longer watched loses its history; a removed entry its file."""
    entry = await set_up(hass, fake, fake_url, [FRONT_DESK, SALES_LINE])
    await poll(hass, freezer)
    await hass.config_entries.async_unload(entry.entry_id)
    assert set(stored_agents(hass_storage, entry)) == {FRONT_DESK, SALES_LINE}

    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_AGENTS: [FRONT_DESK]}
    )
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)
    assert set(stored_agents(hass_storage, entry)) == {FRONT_DESK}

    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert storage_key(entry.entry_id) not in hass_storage
