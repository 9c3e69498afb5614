"""Turn a lab recording (scripts/opensips/lab.py) into a trace the tests replay.

    .venv/bin/python scripts/opensips/extract.py RUN_DIR tests/opensips/NAME.jsonl

One JSON object a line, times in seconds since the scenario started:
- first line: the header (`scenario`, `opensips` version, `recorded` date and
  each registration's `timer_interval` and requested `expiry`);
- `{"t", "action"}`: what the scenario did (registrar modes, disable,
  enable, reload, a password changed, registrar stopped or started);
- `{"t", "reg", "state"}`: a state change, to the microsecond, from the
  registrant's event route (`reg` is `instance/user`). OpenSIPS 3.x raises
  none: they are derived from the REGISTERs the registrant sent and the
  registrar's replies, as the module acts on them (REGISTERING or
  UNREGISTERING at a send without credentials, AUTHENTICATING(_UNREGISTER)
  at one with them, REGISTERED at a 200 OK, WRONG_CREDENTIALS at a 401 to
  credentials, REGISTRAR_ERROR at another error); a send left unanswered
  ends in the state `reg_list` shows next, half a poll before that poll.
  The header's `events` says which (`raised` or `derived`);
- `{"t", "reg", "reg_list"}`: the registration's `reg_list` fields when any of
  them changed since the last poll (once a second): `state`, `enabled`,
  `expires` (a duration) and `last_register_sent` / `registration_t_out` as
  seconds since the start (whole seconds as OpenSIPS prints them; null for
  "Thu Jan  1 00:00:00 1970").
"""

from datetime import UTC, datetime
import json
import math
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
SEND = re.compile(
    r"SEND (\d+) (\d+) REGISTER user=(\w+) cseq=(\d+) expires=(\S+) contact=(\S+) "
    r"auth=(\S+)"
)
REPLY = re.compile(r"TX (\d+) (\d+) (\d+) user=(\w+) cseq=(\d+)")
REGISTRAR_PORT = re.compile(r"sip\\:127\.0\.0\.1\\:(\d+)")
SOCKET_PORT = re.compile(r"socket=udp:127\.0\.0\.1:(\d+)")
# Half the reg_list poll: when a state no message marks came, at best.
HALF_POLL = 0.5
# A send this soon after a reply was made on that reply.
ON_REPLY = 0.005


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
    raised = [json.loads(line) for line in (run / "events.jsonl").open()]
    lines.extend(
        {
            "t": round(event["t"] - t0, 6),
            "reg": f"{event['inst']}/{event['aor']}",
            "state": event["state"],
        }
        for event in raised
    )
    changes: list[dict[str, Any]] = []
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
                changes.append(
                    {"t": round(poll["t"] - t0, 3), "reg": reg, "reg_list": fields}
                )
    lines.extend(changes)
    if not raised:
        lines.extend(_derived_events(run, t0, changes))
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
        "events": "raised" if raised else "derived",
    }
    return [header, *lines]


def _derived_events(
    run: Path, t0: float, changes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Return the state changes of a registrant that raises no events (3.x)."""
    # Each registrar's replies, by user and CSeq (one registrant a user in a
    # run); a registrar logs a reply just after sending it.
    replies: dict[tuple[str, str, str], list[tuple[float, int]]] = {}
    for config in run.glob("*.cfg"):
        port = SOCKET_PORT.search(config.read_text())
        log = run / f"{config.stem}.log"
        if port is None or not log.exists():
            continue
        for seconds, micros, code, user, cseq in REPLY.findall(
            log.read_text(errors="replace")
        ):
            replies.setdefault((port[1], user, cseq), []).append(
                (int(seconds) + int(micros) / 1e6 - t0, int(code))
            )
    # A reload recreates a registration: replies to what it sent before are
    # no longer its own.
    reloads: dict[str, list[float]] = {}
    for line in (run / "actions.jsonl").open():
        action = json.loads(line)
        if action["event"].endswith(" reg_reload"):
            instance = action["event"].split()[0]
            reloads.setdefault(instance, []).append(action["t"] - t0)
    events: list[dict[str, Any]] = []
    for config in sorted(run.glob("*.cfg")):
        table = run / f"db_{config.stem}" / "registrant"
        if not table.exists():
            continue
        registrar = REGISTRAR_PORT.search(table.read_text())
        sent_log = (run / f"{config.stem}.log").read_text(errors="replace")
        sends: dict[str, list[tuple[float, str, bool, bool]]] = {}
        for seconds, micros, user, cseq, expires, contact, auth in SEND.findall(
            sent_log
        ):
            unregister = expires == "0" or contact.endswith(";expires=0")
            sends.setdefault(user, []).append(
                (
                    int(seconds) + int(micros) / 1e6 - t0,
                    cseq,
                    unregister,
                    auth.isdigit() and int(auth) > 0,
                )
            )
        for user, user_sends in sends.items():
            reg = f"{config.stem}/{user}"
            registrar_port = registrar[1] if registrar else ""
            for i, (sent, cseq, unregister, authenticated) in enumerate(user_sends):
                until = user_sends[i + 1][0] if i + 1 < len(user_sends) else math.inf
                events.append(
                    {
                        "t": round(sent, 6),
                        "reg": reg,
                        "state": _sending(unregister, authenticated),
                    }
                )
                # A reply after the next send was not acted on as an answer
                # (a disable met the REGISTER pending: it unREGISTERs).
                reply = next(
                    (
                        a
                        for a in replies.get((registrar_port, user, cseq), [])
                        if sent < a[0] < until
                        and not any(
                            sent < r < a[0] for r in reloads.get(config.stem, [])
                        )
                    ),
                    None,
                )
                state, when = None, None
                if reply is not None:
                    when, code = reply
                    state = _answered(code, unregister, authenticated)
                    if (
                        state == "REGISTERED"
                        and i + 1 < len(user_sends)
                        and user_sends[i + 1][2]
                        and until - when < ON_REPLY
                    ):
                        # Disabled while it waited: the module unREGISTERs on
                        # the 200 OK, never REGISTERED.
                        state = None
                else:
                    change = next(
                        (
                            c
                            for c in changes
                            if c["reg"] == reg
                            and sent < c["t"] < until
                            and c["reg_list"]["state"] not in PENDING
                        ),
                        None,
                    )
                    if change is not None:
                        when = change["t"] - HALF_POLL
                        state = change["reg_list"]["state"].removesuffix("_STATE")
                if state is not None and when is not None and state not in SILENT:
                    events.append({"t": round(when, 6), "reg": reg, "state": state})
    return events


PENDING = {
    "REGISTERING_STATE",
    "AUTHENTICATING_STATE",
    "UNREGISTERING_STATE",
    "AUTHENTICATING_UNREGISTER_STATE",
}
# States the module raises no event for.
SILENT = {"NOT_REGISTERED"}


def _sending(unregister: bool, authenticated: bool) -> str:
    if unregister:
        return "AUTHENTICATING_UNREGISTER" if authenticated else "UNREGISTERING"
    return "AUTHENTICATING" if authenticated else "REGISTERING"


def _answered(code: int, unregister: bool, authenticated: bool) -> str | None:
    """Return the state a reply puts the registration in (None: no change)."""
    if code == 200:
        return "NOT_REGISTERED" if unregister else "REGISTERED"
    if code == 401:
        # A challenge is answered with credentials; a 401 to them is final.
        return "WRONG_CREDENTIALS" if authenticated else None
    return "REGISTRAR_ERROR"


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
