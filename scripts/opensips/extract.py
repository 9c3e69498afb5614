"""Turn a lab recording (scripts/opensips/lab.py) into a trace the tests replay.

    .venv/bin/python scripts/opensips/extract.py RUN_DIR tests/opensips/NAME.jsonl

One JSON object a line, times in seconds since the scenario started:
- first line: the header (`scenario`, `opensips` version, `recorded` date and
  each registration's `timer_interval` and requested `expiry`);
- `{"t", "action"}`: what the scenario did (registrar modes, disable,
  enable, reload, a password changed, registrar stopped or started);
- `{"t", "reg", "state"}`: a state change, to the microsecond, from the
  registrant's event route (`reg` is `instance/user`);
- `{"t", "reg", "reg_list"}`: the registration's `reg_list` fields when any of
  them changed since the last poll (once a second): `state`, `enabled`,
  `expires` (a duration) and `last_register_sent` / `registration_t_out` as
  seconds since the start (whole seconds as OpenSIPS prints them; null for
  "Thu Jan  1 00:00:00 1970").
"""

from datetime import UTC, datetime
import json
from pathlib import Path
import re
import sys
from typing import Any

NEVER = "Thu Jan  1 00:00:00 1970"
TIMER = re.compile(r'"timer_interval", (\d+)')
ROW = re.compile(
    r"sip\\:(\w+)@127\.0\.0\.1::\w+:[^:]*:sip\\:\w+@127\.0\.0\.1\\:\d+::(\d+):"
)
MODES = {0: "normal", 1: "silent", 2: "503", 3: "403", 4: "slow"}


def _ctime(value: str, t0: float) -> float | None:
    if value == NEVER:
        return None
    # OpenSIPS prints ctime() of the machine's local time; the lab runs in UTC.
    when = datetime.strptime(value, "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    return round(when.timestamp() - t0, 3)


def _action(entry: dict[str, Any]) -> str | None:
    event: str = entry["event"]
    params = entry.get("params") or {}
    if event == "registrar shv_set":
        return f"registrar {params['name']} {MODES[params['value']]}"
    if event.endswith(("reg_disable", "reg_enable")):
        user = params["aor"].split(":")[1].split("@")[0]
        return f"{event.split()[1].removeprefix('reg_')} {event.split(maxsplit=1)[0]}/{user}"
    if event.endswith("reg_reload"):
        return f"reload {event.split(maxsplit=1)[0]}"
    if event.startswith(("start registrar", "stop registrar", "password ")):
        return event
    return None


def extract(run: Path) -> list[dict[str, Any]]:
    """Return the trace lines of a recording."""
    actions = [json.loads(line) for line in (run / "actions.jsonl").open()]
    t0 = next(a["t"] for a in actions if a["event"] == "scenario start")
    registrations: dict[str, dict[str, int]] = {}
    for config in sorted(run.glob("*.cfg")):
        if not (run / f"db_{config.stem}" / "registrant").exists():
            continue
        timer = TIMER.search(config.read_text())
        for user, expiry in ROW.findall(
            (run / f"db_{config.stem}" / "registrant").read_text()
        ):
            registrations[f"{config.stem}/{user}"] = {
                "timer_interval": int(timer.group(1)) if timer else 100,
                "expiry": int(expiry),
            }
    lines: list[dict[str, Any]] = [
        {"t": round(entry["t"] - t0, 3), "action": action}
        for entry in actions
        if (action := _action(entry)) is not None
    ]
    for line in (run / "events.jsonl").open():
        event = json.loads(line)
        lines.append(
            {
                "t": round(event["t"] - t0, 6),
                "reg": f"{event['inst']}/{event['aor']}",
                "state": event["state"],
            }
        )
    last: dict[str, dict[str, Any]] = {}
    for line in (run / "reg_list.jsonl").open():
        poll = json.loads(line)
        for record in (poll["reply"] or {}).get("Records", []):
            reg = f"{poll['inst']}/{record['AOR'].split(':')[1].split('@')[0]}"
            fields = {
                "state": record["state"],
                "enabled": record["enabled"],
                "expires": record["expires"],
                "last_register_sent": _ctime(record["last_register_sent"], t0),
                "registration_t_out": _ctime(record["registration_t_out"], t0),
            }
            if last.get(reg) != fields:
                last[reg] = fields
                lines.append(
                    {"t": round(poll["t"] - t0, 3), "reg": reg, "reg_list": fields}
                )
    lines.sort(key=lambda line: line["t"])
    version = next(
        (
            line.split("version: opensips ")[1].split()[0]
            for log in sorted(run.glob("*.log"))
            for line in log.read_text(errors="replace").splitlines()
            if "version: opensips " in line
        ),
        "unknown",
    )
    header = {
        "scenario": run.name,
        # The start as a Unix time: OpenSIPS counts whole seconds of it.
        "t0": t0,
        "opensips": version,
        "recorded": datetime.fromtimestamp(t0, UTC).date().isoformat(),
        "registrations": registrations,
    }
    return [header, *lines]


def main() -> None:
    """Write the trace of RUN_DIR to OUT."""
    run, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as file:
        for line in extract(run):
            file.write(json.dumps(line, separators=(",", ":")) + "\n")
    print(f"{out}: {out.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
