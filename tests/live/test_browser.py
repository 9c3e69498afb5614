"""Add the integration through the Home Assistant frontend, as a user would.

Headless Debian chromium, driven by Playwright, against a real `hass` process
and the fake Telzino API. Every step is checked for raw translation keys and
saved as a screenshot: to a temporary folder, or to the folder named by
TELZINO_SCREENSHOTS (`scripts/screenshots` refreshes docs/images that way).
"""

import asyncio
from collections.abc import AsyncIterator
import os
from pathlib import Path
import time
from typing import Any

from playwright.async_api import Browser, Page, async_playwright, expect
import pytest
import yaml

from scripts.fake_telzino import CLIENT_ID, CLIENT_SECRET, FakeTelzino
from scripts.live_ha import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DEMO_PASSWORD,
    DEMO_USER,
    LiveHomeAssistant,
    free_port,
    run_home_assistant,
)

pytestmark = [
    pytest.mark.live,
    pytest.mark.slow,
    # One live worker runs these; the rate-limit test, which waits longest, has the other.
    pytest.mark.xdist_group("live"),
    pytest.mark.timeout(300),
]
# The frontend's first load on a cold, busy CI machine can take longer than
# Playwright's default 5 s; a missing element still fails, only later.
expect.set_options(timeout=20_000)

# Collects the text of the page, including inside the frontend's shadow roots.
PAGE_TEXT = """() => {
  const parts = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) parts.push(node.textContent);
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(document.body);
  return parts.join(" ");
}"""
# Sizes of the Telzino brand images the page shows (0: failed to load).
BRAND_IMAGES = """() => {
  const sizes = [];
  const walk = (node) => {
    if (node.tagName === "IMG" && node.src.includes("telzino")) sizes.push(node.naturalWidth);
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.children || []) walk(child);
  };
  walk(document.body);
  return sizes;
}"""


def readme_dashboard() -> dict[str, Any]:
    """Return a dashboard of the cards of the README's dashboard example.

    Read from the README, so that its YAML is what the screenshot shows.
    """
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Dashboard cards", 1)[1]
    cards = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    return {"views": [{"title": "Phones", "cards": cards}]}


# How long the browser test's Sales line stays lost, in real seconds: longer
# than the 10 s in which Home Assistant merges requested refreshes.
OUTAGE = 12


async def refresh_until(hass: LiveHomeAssistant, entity_id: str, state: str) -> None:
    """Ask Home Assistant to poll now until `entity_id` shows `state`."""
    for _ in range(40):
        await hass.websocket_command(
            {
                "type": "call_service",
                "domain": "homeassistant",
                "service": "update_entity",
                "service_data": {"entity_id": entity_id},
            }
        )
        if (await hass.states()).get(entity_id, {}).get("state") == state:
            return
        await asyncio.sleep(1)
    raise AssertionError(f"{entity_id} never became {state}")


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Return the folder for screenshots (TELZINO_SCREENSHOTS, or a temporary one)."""
    folder = Path(os.environ.get("TELZINO_SCREENSHOTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Yield Debian's chromium, driven by Playwright."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


async def check_step(page: Page, screenshots: Path, name: str) -> str:
    """Save a screenshot; fail on any untranslated key; return the page text."""
    await page.wait_for_timeout(500)  # let the dialog's animation settle
    await page.screenshot(path=screenshots / f"{name}.png")
    text: str = await page.evaluate(PAGE_TEXT)
    assert "component.telzino" not in text, name
    return text


async def log_in(page: Page, hass: LiveHomeAssistant) -> None:
    """Log in as the demo user."""
    await page.goto(f"{hass.url}/")
    await page.get_by_role("textbox", name="Username").fill(DEMO_USER)
    await page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(
        lambda url: "auth_callback" not in url and "/auth/" not in url
    )


async def test_add_integration_in_the_frontend(
    fake: FakeTelzino,
    fake_url: str,
    tmp_path: Path,
    browser: Browser,
    screenshots: Path,
) -> None:
    """Add integration in the frontend."""
    fake.clock = time.time  # real times for the screenshots
    fake.add_agent("Front desk")
    sales_line = fake.add_agent("Sales line")
    fake.add_agent("After-hours support", state="WRONG_CREDENTIALS_STATE")
    async with run_home_assistant(tmp_path / "config", free_port()) as hass:
        await hass.onboard()
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await log_in(page, hass)

        await page.goto(f"{hass.url}/config/integrations/dashboard")
        # Home Assistant asks once to confirm the port set in configuration.yaml.
        confirm = page.get_by_role("button", name="Confirm")
        await expect(page.get_by_role("button", name="Add integration")).to_be_visible()
        if await confirm.count():
            await confirm.click()
        await page.get_by_role("button", name="Add integration").click()
        # Typing before the dialog has focused its search field would type into
        # nothing on a slow machine: fill the field itself once it is there.
        await page.get_by_placeholder("Search for a brand name").fill("Telzino")
        await page.get_by_text("Telzino", exact=True).last.click()

        await expect(page.get_by_text("Connect to Telzino")).to_be_visible()
        await check_step(page, screenshots, "config-flow-1-menu")
        await page.get_by_text("Client ID and secret (recommended)").click()

        await page.get_by_role("textbox", name="Client ID").fill(CLIENT_ID)
        await page.get_by_role("textbox", name="Client secret").fill("wrong")
        await page.get_by_text("Advanced").click()
        await page.get_by_role("textbox", name="API URL").fill(fake_url)
        await page.get_by_role("button", name="Submit").click()
        await expect(
            page.get_by_text("Telzino rejected these credentials")
        ).to_be_visible()
        await check_step(page, screenshots, "config-flow-2-credentials-error")

        await page.get_by_role("textbox", name="Client secret").fill(CLIENT_SECRET)
        await page.get_by_role("button", name="Submit").click()
        await expect(page.get_by_text("Agents to watch")).to_be_visible()
        for agent in ("Front desk", "Sales line", "After-hours support"):
            await page.get_by_text(agent, exact=True).click()
            await expect(page.get_by_role("checkbox", name=agent)).to_be_checked()
        await check_step(page, screenshots, "config-flow-3-agents")
        await page.get_by_role("button", name="Submit").click()

        # One device per agent, offered for naming and an area.
        await expect(page.get_by_text("Name and assign")).to_be_visible()
        await expect(page.get_by_text("AI phone agent")).to_have_count(3)
        await check_step(page, screenshots, "config-flow-4-devices")
        # The brand images in custom_components/telzino/brand are served and shown.
        brand_images = await page.evaluate(BRAND_IMAGES)
        assert brand_images
        assert all(width > 0 for width in brand_images)
        await page.get_by_role("button", name="Skip and finish").click()

        # Some history to show: Sales line up for a while, lost, then back.
        await asyncio.sleep(2 * OUTAGE)
        fake.set_state(sales_line.id, "REGISTER_TIMEOUT_STATE")
        await refresh_until(hass, "binary_sensor.sales_line_registered", "off")
        await asyncio.sleep(OUTAGE)
        fake.set_state(sales_line.id, "REGISTERED_STATE")
        await refresh_until(hass, "binary_sensor.sales_line_registered", "on")
        states = await hass.states()
        # Shown in minutes.
        assert float(states["sensor.sales_line_last_outage"]["state"]) * 60 >= OUTAGE
        assert 0 < float(states["sensor.sales_line_uptime_24_h"]["state"]) < 100
        assert states["sensor.after_hours_support_lost_since"]["state"] != "unknown"

        await page.goto(f"{hass.url}/config/devices/dashboard")
        await page.get_by_text("Sales line", exact=True).click()
        # Its logbook names the state sensor too: the entity row comes first.
        await expect(page.get_by_text("Registration state").first).to_be_visible()
        text = await check_step(page, screenshots, "device-page")
        for name in (
            "Registered",
            "Registration state",
            "Registration expires",
            "Registration",
            "Lost since",
            "Last outage",
            "Next registration attempt",
            "Uptime (24 h)",
        ):
            assert name in text
        assert "Telzino" in text

        # A dashboard of their own, as a user would build from the README's YAML.
        await hass.websocket_command(
            {
                "type": "lovelace/dashboards/create",
                "url_path": "telzino-phones",
                "title": "Phones",
                "icon": "mdi:phone",
                "show_in_sidebar": True,
                "require_admin": False,
                "mode": "storage",
            }
        )
        await hass.websocket_command(
            {
                "type": "lovelace/config/save",
                "url_path": "telzino-phones",
                "config": readme_dashboard(),
            }
        )
        await page.get_by_role("link", name="Phones").click()
        await expect(page.get_by_text("Telzino agents")).to_be_visible()
        await expect(page.get_by_text("Sales line uptime (24 h)")).to_be_visible()
        # The activity card has Sales line's outage from the first minute on.
        await expect(page.get_by_text("Registration changes")).to_be_visible()
        activity = page.locator("hui-logbook-card")
        await expect(activity.get_by_text("Disconnected")).to_be_visible()
        await expect(activity.get_by_text("Sales line").first).to_be_visible()
        text = await check_step(page, screenshots, "dashboard")
        assert "Wrong SIP credentials" in text
        assert "Disconnected" in text
        assert "After-hours, lost since" in text
