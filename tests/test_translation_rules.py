"""Every translation file passes the rules hassfest applies to a custom integration.

Written from Home Assistant's developer documentation on translations and from
what hassfest reports: the keys each section allows, translation keys of
lower-case letters, digits, `-` and `_`, a repair issue with either a
description or a fix flow (never both: the text of a fixable issue belongs
in its fix flow's step), no empty strings, no HTML, no quoted placeholders,
and only placeholders the code fills in.
"""

import ast
import json
from pathlib import Path
import re
from typing import Any

import probatio
import pytest

INTEGRATION = Path(__file__).parent.parent / "custom_components" / "telzino"
TRANSLATIONS = sorted((INTEGRATION / "translations").glob("*.json"))
PLACEHOLDER = re.compile(r"\{(\w+)\}")

KEY = probatio.Match(r"^[a-z0-9_-]+$", msg="translation keys are [a-z0-9-_]+")


def text(value: Any) -> str:
    """Accept a non-empty string with no HTML and no quoted placeholder."""
    if not isinstance(value, str) or not value.strip():
        raise probatio.Invalid("empty or not a string")
    if re.search(r"<[a-zA-Z/][^>]*>", value):
        raise probatio.Invalid("HTML is not allowed")
    if re.search(r"'\{\w+\}'", value):
        raise probatio.Invalid("placeholders must not be in single quotes")
    return value


def texts() -> probatio.Schema:
    """Return a schema for a mapping of translation keys to strings."""
    return probatio.Schema({KEY: text})


STEP = {
    probatio.Optional("title"): text,
    probatio.Optional("description"): text,
    probatio.Optional("data"): texts(),
    probatio.Optional("data_description"): texts(),
    probatio.Optional("menu_options"): texts(),
    probatio.Optional("menu_option_descriptions"): texts(),
    probatio.Optional("submit"): text,
    probatio.Optional("sections"): {
        KEY: {
            probatio.Optional("name"): text,
            probatio.Optional("description"): text,
            probatio.Optional("data"): texts(),
            probatio.Optional("data_description"): texts(),
        }
    },
}
FLOW = {
    probatio.Optional("step"): {KEY: STEP},
    probatio.Optional("error"): texts(),
    probatio.Optional("abort"): texts(),
    probatio.Optional("progress"): texts(),
    probatio.Optional("create_entry"): texts(),
}
CONFIG_FLOW = {
    **FLOW,
    probatio.Optional("initiate_flow"): {
        probatio.Optional("user"): text,
        probatio.Optional("reconfigure"): text,
    },
    probatio.Optional("entry_type"): text,
}
FIX_FLOW = {
    probatio.Optional("step"): {KEY: STEP},
    probatio.Optional("error"): texts(),
    probatio.Optional("abort"): texts(),
}


def description_or_fix_flow(issue: dict[str, Any]) -> dict[str, Any]:
    """Require a description or a fix flow (the exclusion forbids both)."""
    if "description" not in issue and "fix_flow" not in issue:
        raise probatio.Invalid("an issue needs a description or a fix_flow")
    return issue


ENTITY_TRANSLATION = {
    probatio.Optional("name"): text,
    probatio.Optional("state"): texts(),
    probatio.Optional("state_attributes"): {
        KEY: {probatio.Optional("name"): text, probatio.Optional("state"): texts()}
    },
    probatio.Optional("unit_of_measurement"): text,
}
TRANSLATION_FILE = probatio.Schema(
    {
        probatio.Optional("title"): text,
        probatio.Optional("config"): CONFIG_FLOW,
        probatio.Optional("options"): FLOW,
        probatio.Optional("selector"): {KEY: {probatio.Optional("options"): texts()}},
        probatio.Optional("entity"): {KEY: {KEY: ENTITY_TRANSLATION}},
        probatio.Optional("exceptions"): {KEY: {probatio.Required("message"): text}},
        probatio.Optional("issues"): {
            KEY: probatio.All(
                {
                    probatio.Required("title"): text,
                    probatio.Exclusive("description", "fixable"): text,
                    probatio.Exclusive("fix_flow", "fixable"): FIX_FLOW,
                },
                description_or_fix_flow,
            )
        },
    }
)


def placeholders_in(value: Any) -> set[str]:
    """Return every placeholder used in a nested translation value."""
    if isinstance(value, dict):
        return {name for child in value.values() for name in placeholders_in(child)}
    return set(PLACEHOLDER.findall(value))


def placeholders_the_code_fills() -> set[str]:
    """Return the keys of every placeholder mapping the integration's code builds.

    Dicts passed as description or translation placeholders, dicts assigned to a
    name ending in `placeholders`, and the placeholder dicts of form errors.
    """
    names: set[str] = set()

    def keys(node: ast.AST | None) -> None:
        if isinstance(node, ast.Dict):
            names.update(
                key.value
                for key in node.keys
                if isinstance(key, ast.Constant) and isinstance(key.value, str)
            )

    for path in INTEGRATION.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg and keyword.arg.endswith("placeholders"):
                        keys(keyword.value)
                if getattr(node.func, "id", "") == "FormError" and len(node.args) > 1:
                    keys(node.args[1])
            elif isinstance(node, ast.Assign):
                target = node.targets[0]
                if getattr(target, "id", "").endswith("placeholders"):
                    keys(node.value)
    return names


@pytest.mark.parametrize("path", TRANSLATIONS, ids=lambda path: path.name)
def test_translation_file_passes_the_rules(path: Path) -> None:
    """The file has only allowed keys, in allowed shapes, with valid strings."""
    TRANSLATION_FILE(json.loads(path.read_text()))


@pytest.mark.parametrize("path", TRANSLATIONS, ids=lambda path: path.name)
def test_every_placeholder_is_filled_by_the_code(path: Path) -> None:
    """A placeholder the code never fills would show as {name} to the user."""
    used = placeholders_in(json.loads(path.read_text()))
    assert used <= placeholders_the_code_fills()


@pytest.mark.parametrize(
    ("issue", "problem"),
    [
        (
            {"title": "t", "description": "d", "fix_flow": {}},
            "two or more values in the same group of exclusion 'fixable'",
        ),
        ({"title": "t"}, "an issue needs a description or a fix_flow"),
        ({"title": "t", "description": ""}, "empty or not a string"),
        ({"title": "t", "description": "See <b>this</b>"}, "HTML is not allowed"),
        ({"title": "t", "description": "Agent '{agent}'"}, "single quotes"),
        ({"title": "t", "descripton": "typo"}, "not a valid option"),
    ],
)
def test_the_rules_catch_what_hassfest_rejects(
    issue: dict[str, Any], problem: str
) -> None:
    """The schema above fails for each mistake hassfest reports."""
    with pytest.raises(probatio.Invalid, match=re.escape(problem)):
        TRANSLATION_FILE({"issues": {"some_issue": issue}})


def test_translation_keys_are_lower_case() -> None:
    """A state or error key with capitals is rejected."""
    with pytest.raises(probatio.Invalid, match="translation keys are"):
        TRANSLATION_FILE({"config": {"error": {"Invalid_Auth": "x"}}})
