"""Every key the code uses has its text in translations/en.json and icons.json."""

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from custom_components.telzino.binary_sensor import BINARY_SENSORS
from custom_components.telzino.config_flow import FORM_ERRORS
from custom_components.telzino.const import (
    ISSUE_AGENT_NOT_FOUND,
    ISSUE_WRONG_CREDENTIALS,
)
from custom_components.telzino.event import REGISTRATION_EVENT
from custom_components.telzino.sensor import SENSORS

INTEGRATION = Path(__file__).parent.parent / "custom_components" / "telzino"
EN = json.loads((INTEGRATION / "translations" / "en.json").read_text())
ICONS = json.loads((INTEGRATION / "icons.json").read_text())


def string_arguments(module: str) -> dict[str, set[str]]:
    """Return the string literals a module uses as form errors, aborts and keys."""
    tree = ast.parse((INTEGRATION / module).read_text())
    found: dict[str, set[str]] = {"error": set(), "abort": set(), "exception": set()}

    def literal(node: ast.AST) -> str | None:
        return (
            node.value
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            else None
        )

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name == "FormError" and node.args and (key := literal(node.args[0])):
                found["error"].add(key)
            for keyword in node.keywords:
                if keyword.arg == "reason" and (key := literal(keyword.value)):
                    found["abort"].add(key)
                if keyword.arg == "translation_key" and (key := literal(keyword.value)):
                    found["exception"].add(key)
        elif isinstance(node, ast.Assign) and isinstance(
            node.targets[0], ast.Subscript
        ):
            target = node.targets[0].value
            if getattr(target, "id", "") == "errors" and (key := literal(node.value)):
                found["error"].add(key)
    return found


def test_config_flow_errors_and_aborts_are_translated() -> None:
    """Config flow errors and aborts are translated."""
    used = string_arguments("config_flow.py")
    used["error"].update(key for _, key in FORM_ERRORS)
    assert used["error"] >= {
        "invalid_auth",
        "cannot_connect",
        "rate_limited",
        "invalid_url",
        "unknown",
    }
    assert used["error"] <= set(EN["config"]["error"])
    assert used["abort"] <= set(EN["config"]["abort"])
    options_errors = {"no_agents_selected", "invalid_agent_id"}
    assert options_errors <= set(EN["options"]["error"])


def test_exceptions_and_issues_are_translated() -> None:
    """Exceptions and issues are translated."""
    used = string_arguments("coordinator.py")
    # Keys chosen at run time from the error type.
    used["exception"] |= {"forbidden", "invalid_response", "cannot_connect"}
    assert used["exception"] <= set(EN["exceptions"])
    assert {ISSUE_WRONG_CREDENTIALS, ISSUE_AGENT_NOT_FOUND} <= set(EN["issues"])
    assert string_arguments("repairs.py")["abort"] <= set(
        EN["issues"][ISSUE_AGENT_NOT_FOUND]["fix_flow"]["abort"]
    )


@pytest.mark.parametrize(
    ("platform", "descriptions"),
    [
        ("binary_sensor", BINARY_SENSORS),
        ("sensor", SENSORS),
        ("event", (REGISTRATION_EVENT,)),
    ],
)
def test_entities_have_names_states_and_icons(
    platform: str, descriptions: tuple[Any, ...]
) -> None:
    """Entities have names states and icons."""
    for description in descriptions:
        key = description.translation_key
        assert EN["entity"][platform][key]["name"]
        assert ICONS["entity"][platform][key]["default"].startswith("mdi:")
        states = getattr(description, "options", None) or getattr(
            description, "event_types", None
        )
        if states:
            translated = (
                EN["entity"][platform][key].get("state")
                or EN["entity"][platform][key]["state_attributes"]["event_type"][
                    "state"
                ]
            )
            assert set(translated) == set(states)
