"""manifest.json, hacs.json, translations and icons as Home Assistant and HACS check them."""

import json
from pathlib import Path
import re
from typing import Any
from urllib.parse import urlsplit

from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as ha_version
import pytest

ROOT = Path(__file__).parent.parent
INTEGRATION = ROOT / "custom_components" / "telzino"
MANIFEST = json.loads((INTEGRATION / "manifest.json").read_text())
HACS = json.loads((ROOT / "hacs.json").read_text())
TRANSLATIONS = sorted((INTEGRATION / "translations").glob("*.json"))
EN = json.loads((INTEGRATION / "translations" / "en.json").read_text())

# hassfest's manifest schema for custom integrations.
MANIFEST_KEYS = {
    "domain",
    "name",
    "after_dependencies",
    "bluetooth",
    "codeowners",
    "config_flow",
    "dependencies",
    "dhcp",
    "disabled",
    "documentation",
    "homekit",
    "import_executor",
    "integration_type",
    "iot_class",
    "issue_tracker",
    "loggers",
    "mqtt",
    "quality_scale",
    "requirements",
    "single_config_entry",
    "ssdp",
    "usb",
    "version",
    "zeroconf",
}
IOT_CLASSES = {
    "assumed_state",
    "cloud_polling",
    "cloud_push",
    "local_polling",
    "local_push",
    "calculated",
}
INTEGRATION_TYPES = {
    "device",
    "entity",
    "hardware",
    "helper",
    "hub",
    "service",
    "system",
    "virtual",
}
# HACS's hacs.json schema.
HACS_KEYS = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "hacs",
    "persistent_directory",
    "render_readme",
}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def test_manifest_is_valid_for_hassfest() -> None:
    """Manifest is valid for hassfest."""
    keys = list(MANIFEST)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert set(keys) <= MANIFEST_KEYS
    assert MANIFEST["domain"] == INTEGRATION.name
    for required in (
        "codeowners",
        "documentation",
        "issue_tracker",
        "version",
        "iot_class",
    ):
        assert MANIFEST[required]
    assert MANIFEST["iot_class"] == "cloud_polling"
    assert MANIFEST["iot_class"] in IOT_CLASSES
    assert MANIFEST["integration_type"] in INTEGRATION_TYPES
    assert MANIFEST["config_flow"] is True
    assert AwesomeVersion(MANIFEST["version"]).valid
    for url_key in ("documentation", "issue_tracker"):
        url = urlsplit(MANIFEST[url_key])
        assert url.scheme == "https"
        assert url.hostname != "www.home-assistant.io"
    assert all(owner.startswith("@") for owner in MANIFEST["codeowners"])
    # Home Assistant ships aiohttp; the integration needs nothing else.
    assert MANIFEST.get("requirements", []) == []


def test_hacs_json_is_valid() -> None:
    """hacs.json has HACS's keys and the minimum version the oldest suite tests."""
    assert set(HACS) <= HACS_KEYS
    assert HACS["name"] == MANIFEST["name"]
    minimum = AwesomeVersion(HACS["homeassistant"])
    assert minimum.valid
    # The suite runs against this Home Assistant, which must be supported.
    assert AwesomeVersion(ha_version) >= minimum
    # And the minimum is the version the oldest test environment pins.
    assert (
        f"homeassistant=={HACS['homeassistant']}"
        in (ROOT / "requirements_test_min.txt").read_text()
    )


def leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Every string of a translation file by its dotted key."""
    found: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            found |= leaves(value, f"{prefix}{key}.")
        else:
            found[f"{prefix}{key}"] = value
    return found


EN_LEAVES = leaves(EN)


def test_at_least_six_languages() -> None:
    """English, German, French, Spanish, Dutch and Italian are shipped."""
    assert {path.stem for path in TRANSLATIONS} >= {"en", "de", "fr", "es", "nl", "it"}


@pytest.mark.parametrize("path", TRANSLATIONS, ids=lambda path: path.stem)
def test_translation_is_complete(path: Path) -> None:
    """Same keys as English, non-empty, and the same placeholders in each string."""
    translated = leaves(json.loads(path.read_text()))
    assert set(translated) == set(EN_LEAVES)
    for key, text in translated.items():
        assert isinstance(text, str)
        assert text.strip(), key
        assert set(PLACEHOLDER.findall(text)) == set(
            PLACEHOLDER.findall(EN_LEAVES[key])
        ), key


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return int.from_bytes(header[16:20]), int.from_bytes(header[20:24])


@pytest.mark.parametrize(
    ("name", "shortest", "square"),
    [
        ("icon.png", (256, 256), True),
        ("icon@2x.png", (512, 512), True),
        ("logo.png", (128, 256), False),
        ("logo@2x.png", (256, 512), False),
    ],
)
def test_brand_images(name: str, shortest: tuple[int, int], square: bool) -> None:
    """The sizes Home Assistant's brand guidelines ask for."""
    width, height = png_size(INTEGRATION / "brand" / name)
    assert shortest[0] <= min(width, height) <= shortest[1]
    assert (width == height) is square


def test_license_is_one_github_detects() -> None:
    """HACS's license check needs a license file GitHub recognizes; README names it."""
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in license_text
    assert "MIT (see `LICENSE`" in (ROOT / "README.md").read_text()
