"""What the live tests read in a real Home Assistant's log."""

from pathlib import Path
import re


def integration_errors(config_dir: Path) -> list[str]:
    """Return the integration's ERROR and CRITICAL lines in home-assistant.log."""
    log = (config_dir / "home-assistant.log").read_text()
    return [
        line
        for line in log.splitlines()
        if re.search(r"\] \[custom_components\.telzino", line)
        and re.search(r"^\S+ \S+ (ERROR|CRITICAL)", line)
    ]
