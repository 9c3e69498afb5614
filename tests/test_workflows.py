"""The GitHub workflows a HACS integration runs: hassfest, the HACS action, tests, release.

They cannot run here; this checks that they parse and hold the steps that matter.
"""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
HACS = json.loads((ROOT / "hacs.json").read_text())


def workflow(name: str) -> dict[str, Any]:
    """Return a workflow file, parsed."""
    loaded: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return loaded


def steps(parsed: dict[str, Any]) -> list[dict[str, Any]]:
    """Return every step of every job."""
    return [step for job in parsed["jobs"].values() for step in job["steps"]]


def triggers(parsed: dict[str, Any]) -> dict[str, Any]:
    """Return the `on:` mapping (YAML 1.1 reads a bare `on` as True)."""
    on: dict[str, Any] = parsed.get("on", parsed.get(True))
    return on


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yml")), ids=lambda p: p.name)
def test_workflow_parses_and_every_job_has_steps(path: Path) -> None:
    """Each workflow is YAML with a name, triggers and jobs that run steps."""
    parsed = workflow(path.name)
    assert parsed["name"]
    assert triggers(parsed)
    for job in parsed["jobs"].values():
        assert job["runs-on"] == "ubuntu-latest"
        assert job["steps"]
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), step


def test_validate_runs_hassfest_and_the_hacs_action() -> None:
    """Hassfest on the checked-out files, and HACS's action as an integration."""
    parsed = workflow("validate.yml")
    uses = {step.get("uses", "").partition("@")[0]: step for step in steps(parsed)}
    assert "actions/checkout" in uses
    assert "home-assistant/actions/hassfest" in uses
    assert uses["hacs/action"]["with"]["category"] == "integration"
    assert {"push", "pull_request", "schedule"} <= set(triggers(parsed))


def test_tests_run_the_readme_test_command_on_python_3_14() -> None:
    """The same command as .ci/run, on the Python the newest Home Assistant needs."""
    all_steps = steps(workflow("tests.yml"))
    python = next(
        s for s in all_steps if s.get("uses", "").startswith("actions/setup-python")
    )
    assert python["with"]["python-version"] == "3.14"
    assert any(step.get("run") == "scripts/test" for step in all_steps)
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_release_attaches_the_zip_hacs_installs() -> None:
    """A published release gets the zip that hacs.json names, of the integration's files."""
    parsed = workflow("release.yml")
    assert triggers(parsed) == {"release": {"types": ["published"]}}
    assert parsed["permissions"]["contents"] == "write"
    script = "\n".join(step.get("run", "") for step in steps(parsed))
    assert HACS["zip_release"] is True
    # The zip holds the integration's files at its root, as HACS expects.
    assert "cd custom_components/telzino" in script
    assert f'zip -r "$GITHUB_WORKSPACE/{HACS["filename"]}" .' in script
    assert f'gh release upload "$TAG" {HACS["filename"]}' in script
    # A tag that is not the manifest's version fails the release.
    assert "manifest.json" in script
    assert '"${TAG#v}" != "$version"' in script
