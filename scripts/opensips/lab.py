"""Run the real OpenSIPS uac_registrant on loopback and record what it reports.

The registrant behind Telzino's agents is OpenSIPS' uac_registrant. This lab
runs it against a real OpenSIPS registrar on 127.0.0.1, drives a timed
scenario of faults (a registrar that is silent, slow, answers 403 or 503, or
stops; a wrong password; disable, enable, reload), and records:

- `reg_list.jsonl`: every registrant's MI `reg_list`, verbatim, every second
  (the fields Telzino's status endpoint is made from);
- `events.jsonl`: every state change, to the microsecond, from the
  registrants' `event_route[E_REGISTRANT_*]` (NOT_REGISTERED raises none);
  OpenSIPS 3.x raises no registrant events: `extract.py` derives them from
  the REGISTERs each registrant sends (its `local_route`, in its log) and the
  registrar's replies (its log);
- `actions.jsonl`: what the scenario did when.

`scripts/opensips/extract.py` turns a recording into the traces the tests
replay (tests/opensips/). Usage, with OpenSIPS built by
`scripts/opensips/build SRC`:

    python3 scripts/opensips/lab.py --src SRC --run RUN_DIR [--scenario main]

Scenarios (`SCENARIOS`): `main`, 12 minutes, registrants a (timer_interval 10)
and b (the default 100) with every fault above; `default_timer`, 10 minutes,
registrant d (the default timer, 300 s registrations) with a wrong password,
503 answers, disable, enable, reload and the registrar stopped; `capped`,
6 minutes, registrant c (timer_interval 15) against a registrar that grants
at most 40 s; `pending`, 5 minutes, registrant e (timer_interval 10) whose
registrar turns slow (8 s a reply), then reloads and disables registrations
while their refresh's REGISTER waits for its reply.
Only loopback addresses are used; everything started is stopped at the end.
"""

import argparse
from collections.abc import Callable
from dataclasses import dataclass
import json
import os
from pathlib import Path
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Final

CFG: Final = Path(__file__).parent / "cfg"
# Registrar modes per user, switched at run time with MI shv_set (flip, flipb).
NORMAL, SILENT, ERR503, ERR403, SLOW = 0, 1, 2, 3, 4
EVENT_LINE: Final = re.compile(r"EV (\d+) (\d+) (\S+) aor=sip:([^@]+)@")
VERSION_LINE: Final = re.compile(r"version: opensips (\d+)\.")


@dataclass(frozen=True)
class Registrar:
    """A registrar instance: its port and, optionally, the longest grant."""

    name: str
    port: int
    max_expires: int | None = None


@dataclass(frozen=True)
class Registrant:
    """A registrant instance, its timer and the registrations it holds."""

    name: str
    port: int
    timer_interval: int | None  # None: the module's default (100)
    registrar: Registrar
    # (user, requested expiry, password)
    records: tuple[tuple[str, int, str], ...]


REGISTRAR: Final = Registrar("registrar", 5080)
CAPPED_REGISTRAR: Final = Registrar("registrar2", 5090, max_expires=40)


def _records(*users: tuple[str, int]) -> tuple[tuple[str, int, str], ...]:
    """Return records with the right password, but for the user wrongpw."""
    return tuple(
        (user, expiry, "bad" if user == "wrongpw" else f"pw-{user}")
        for user, expiry in users
    )


REGISTRANT_A: Final = Registrant(
    "a",
    5070,
    10,
    REGISTRAR,
    _records(
        ("ok1", 60),
        ("ok2", 90),
        ("flip", 60),
        ("wrongpw", 60),
        ("err403", 60),
        ("err503", 60),
        ("silent", 60),
        ("slow", 60),
        ("dis1", 60),
        ("rel1", 60),
    ),
)
REGISTRANT_B: Final = Registrant(
    "b", 5072, None, REGISTRAR, _records(("ok3", 250), ("ok4", 300), ("flipb", 250))
)
# The module's default timer (100 s) with every kind of fault.
REGISTRANT_D: Final = Registrant(
    "d",
    5076,
    None,
    REGISTRAR,
    _records(("ok5", 300), ("wrongpw", 300), ("err503", 300), ("dis2", 300)),
)
# Commands that meet a REGISTER waiting for its reply (the registrar made slow).
REGISTRANT_E: Final = Registrant(
    "e", 5078, 10, REGISTRAR, _records(("pendrel", 60), ("pendis", 60), ("ok6", 60))
)
REGISTRANT_C: Final = Registrant(
    "c",
    5074,
    15,
    CAPPED_REGISTRAR,
    _records(("ok1", 60), ("ok2", 35), ("ok3", 35), ("ok4", 60)),
)


class Lab:
    """The running processes of one recording, and what they do."""

    def __init__(self, src: Path, run: Path) -> None:
        """Prepare RUN_DIR; nothing runs yet."""
        self.src = src.resolve()
        self.run = run.resolve()
        self.run.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.registrants: dict[str, Registrant] = {}
        self.t0 = time.time()
        version = subprocess.run(  # noqa: S603  # our own binary
            [str(self.src / "opensips"), "-V"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        major = VERSION_LINE.search(version)
        # The registrant events came with 4.0; earlier releases raise none.
        self.events = (
            (CFG / "events.cfg").read_text() if major and int(major[1]) >= 4 else ""
        )
        self._actions = (self.run / "actions.jsonl").open("a", buffering=1)
        self._stop = threading.Event()
        self._recorder: threading.Thread | None = None

    # Instances ------------------------------------------------------------------

    def _render(self, template: str, name: str, **values: str) -> Path:
        text = (CFG / template).read_text()
        values = {
            "RUN": str(self.run),
            "MODULES": str(self.src / "modules"),
            "NAME": name,
            **values,
        }
        for key, value in values.items():
            text = text.replace(f"@{key}@", value)
        path = self.run / f"{name}.cfg"
        path.write_text(text)
        return path

    def _start(self, name: str, config: Path) -> None:
        log = (self.run / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(  # noqa: S603  # our own binary
            [str(self.src / "opensips"), "-F", "-f", str(config), "-w", str(self.run)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_registrar(self, registrar: Registrar) -> None:
        """Start a registrar that knows every user of the lab."""
        db = self.run / f"db_{registrar.name}"
        db.mkdir(exist_ok=True)
        (db / "version").write_text(
            "table_name(string) table_version(int) \nsubscriber:8\nlocation:1013\n"
        )
        users = sorted(
            {
                user
                for r in (
                    REGISTRANT_A,
                    REGISTRANT_B,
                    REGISTRANT_C,
                    REGISTRANT_D,
                    REGISTRANT_E,
                )
                for user, _, _ in r.records
            }
            | {"new1"}
        )
        (db / "subscriber").write_text(
            "id(int,auto) username(string) domain(string) password(string) "
            # rpid: OpenSIPS 3.x loads it with the credentials by default.
            "ha1(string) ha1_sha256(string) ha1_sha512t256(string) "
            "rpid(string,null) \n"
            + "".join(
                f"{i}:{user}:127.0.0.1:pw-{user}:x:x:x:\n"
                for i, user in enumerate(users, 1)
            )
        )
        limits = (
            f'modparam("registrar", "max_expires", {registrar.max_expires})\n'
            'modparam("registrar", "min_expires", 10)'
            if registrar.max_expires
            else ""
        )
        self._start(
            registrar.name,
            self._render(
                "registrar.cfg", registrar.name, PORT=str(registrar.port), LIMITS=limits
            ),
        )
        self.log(f"start {registrar.name}")

    def stop_instance(self, name: str) -> None:
        """Stop one instance as a service manager would."""
        process = self.processes.pop(name, None)
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.log(f"stop {name}")

    def start_registrant(self, registrant: Registrant) -> None:
        """Start a registrant with its records."""
        self.registrants[registrant.name] = registrant
        self.write_records(registrant)
        timer = (
            f'modparam("uac_registrant", "timer_interval", {registrant.timer_interval})'
            if registrant.timer_interval
            else "# timer_interval: the default (100)"
        )
        self._start(
            registrant.name,
            self._render(
                "registrant.cfg",
                registrant.name,
                PORT=str(registrant.port),
                TIMER=timer,
                EVENTS=self.events,
            ),
        )
        self.log(f"start {registrant.name}")

    def write_records(
        self, registrant: Registrant, extra: tuple[tuple[str, int, str], ...] = ()
    ) -> None:
        """Write the registrant's db_text table (reloaded by reg_reload)."""
        db = self.run / f"db_{registrant.name}"
        db.mkdir(exist_ok=True)
        (db / "version").write_text(
            "table_name(string) table_version(int) \nregistrant:3\n"
        )
        registrar = rf"sip\:127.0.0.1\:{registrant.registrar.port}"
        rows = [
            f"{i}:{registrar}::sip\\:{user}@127.0.0.1::{user}:{password}:"
            f"sip\\:{user}@127.0.0.1\\:{registrant.port}::{expiry}:::0"
            for i, (user, expiry, password) in enumerate(
                (*registrant.records, *extra), 1
            )
        ]
        (db / "registrant").write_text(
            "id(int,auto) registrar(string) proxy(string,null) aor(string) "
            "third_party_registrant(string,null) username(string,null) "
            "password(string,null) binding_URI(string) binding_params(string,null) "
            "expiry(int,null) forced_socket(string,null) cluster_shtag(string,null) "
            "state(int) \n" + "\n".join(rows) + "\n"
        )

    # MI ---------------------------------------------------------------------------

    def mi(self, instance: str, method: str, params: Any = None) -> Any:
        """Send one MI command to an instance's FIFO and return its result."""
        return mi_command(self.run / f"{instance}_fifo", method, params)

    def act(self, instance: str, method: str, params: Any = None) -> None:
        """Send an MI command of the scenario; log it with the time it was sent."""
        sent = time.time()
        result = self.mi(instance, method, params)
        self.log(f"{instance} {method}", at=sent, params=params, result=result)

    def log(self, event: str, at: float | None = None, **details: Any) -> None:
        """Log what the scenario did, with the time (now, unless `at`)."""
        when = time.time() if at is None else at
        self._actions.write(
            json.dumps({"t": round(when, 3), "event": event, **details}) + "\n"
        )

    # Recording --------------------------------------------------------------------

    def start_recording(self) -> None:
        """Write every registrant's reg_list once a second."""

        def record() -> None:
            with (self.run / "reg_list.jsonl").open("a", buffering=1) as out:
                due = time.time()
                while not self._stop.is_set():
                    for name in list(self.registrants):
                        if not (self.run / f"{name}_fifo").exists():
                            continue  # still starting
                        sent = time.time()
                        try:
                            reply = self.mi(name, "reg_list", None)
                        except OSError as err:
                            reply = {"error": repr(err)}
                        out.write(
                            json.dumps(
                                {"t": round(sent, 3), "inst": name, "reply": reply}
                            )
                            + "\n"
                        )
                    due += 1.0
                    self._stop.wait(max(0.0, due - time.time()))

        self._recorder = threading.Thread(target=record, daemon=True)
        self._recorder.start()

    def finish(self) -> None:
        """Stop recording and every instance; collect the state events."""
        self._stop.set()
        if self._recorder is not None:
            self._recorder.join()
        for name in list(self.processes):
            self.stop_instance(name)
        with (self.run / "events.jsonl").open("w") as out:
            for name in self.registrants:
                for line in (
                    (self.run / f"{name}.log").read_text(errors="replace").splitlines()
                ):
                    if match := EVENT_LINE.search(line):
                        seconds, micros, state, user = match.groups()
                        out.write(
                            json.dumps(
                                {
                                    "t": int(seconds) + int(micros) / 1e6,
                                    "inst": name,
                                    "aor": user,
                                    "state": state,
                                }
                            )
                            + "\n"
                        )
        self._actions.close()


def mi_command(fifo: Path, method: str, params: Any, timeout: float = 5.0) -> Any:
    """One JSON-RPC command over an OpenSIPS mi_fifo; the reply comes on a FIFO."""
    reply_name = f"lab_reply_{os.getpid()}_{time.monotonic_ns()}"
    reply_path = Path(tempfile.gettempdir()) / reply_name
    os.mkfifo(reply_path, 0o600)
    try:
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": 1}
        if params is not None:
            request["params"] = params
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.write(fd, f":{reply_name}:{json.dumps(request)}\n".encode())
        os.close(fd)
        reply_fd = os.open(reply_path, os.O_RDONLY | os.O_NONBLOCK)
        data = b""
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                ready, _, _ = select.select([reply_fd], [], [], 0.2)
                if not ready:
                    continue
                chunk = os.read(reply_fd, 65536)
                if not chunk and data:
                    break
                data += chunk
        finally:
            os.close(reply_fd)
        reply = json.loads(data.decode(errors="replace") or "{}")
        return reply.get("result", reply)
    finally:
        reply_path.unlink()


def _aor(user: str, registrant: Registrant) -> dict[str, str]:
    return {
        "aor": f"sip:{user}@127.0.0.1",
        "contact": f"sip:{user}@127.0.0.1:{registrant.port}",
        "registrar": f"sip:127.0.0.1:{registrant.registrar.port}",
    }


def _flip(lab: Lab, user: str, mode: int) -> None:
    lab.act("registrar", "shv_set", {"name": user, "type": "int", "value": mode})


def _reload_with(lab: Lab, password: str, *, new_row: bool = False) -> None:
    """Change rel1's password (and add new1) in the table, then reg_reload."""
    records = tuple(
        (user, expiry, password if user == "rel1" else pw)
        for user, expiry, pw in REGISTRANT_A.records
    )
    lab.write_records(
        Registrant("a", REGISTRANT_A.port, 10, REGISTRAR, records),
        (("new1", 60, "pw-new1"),) if new_row else (),
    )
    # db_text serves its cached table until told to read the file again.
    lab.act("a", "dbt_reload")
    lab.act("a", "reg_reload")
    right = password == "pw-rel1"  # noqa: S105  # the lab's own test password
    lab.log(f"password a/rel1 {'right' if right else 'wrong'}")


type Step = tuple[float, Callable[[Lab], None]]


def _start_main(lab: Lab) -> None:
    lab.start_registrar(REGISTRAR)
    time.sleep(1)
    lab.start_registrant(REGISTRANT_A)
    lab.start_registrant(REGISTRANT_B)


def _start_capped(lab: Lab) -> None:
    lab.start_registrar(CAPPED_REGISTRAR)
    time.sleep(1)
    lab.start_registrant(REGISTRANT_C)


def _both_flips(mode: int) -> Callable[[Lab], None]:
    def flip(lab: Lab) -> None:
        _flip(lab, "flip", mode)
        _flip(lab, "flipb", mode)

    return flip


MAIN: Final[list[Step]] = [
    (0, _start_main),
    (120, _both_flips(SILENT)),
    (150, lambda lab: lab.act("a", "reg_disable", _aor("dis1", REGISTRANT_A))),
    (181, lambda lab: _reload_with(lab, "wrongpass")),
    (210, lambda lab: lab.act("a", "reg_enable", _aor("dis1", REGISTRANT_A))),
    (240, lambda lab: _flip(lab, "flip", ERR503)),
    (270, lambda lab: lab.act("a", "reg_disable", _aor("err503", REGISTRANT_A))),
    (301, lambda lab: _reload_with(lab, "pw-rel1", new_row=True)),
    (330, lambda lab: _flip(lab, "flip", ERR403)),
    (400, lambda lab: lab.act("a", "reg_enable", _aor("err503", REGISTRANT_A))),
    (420, _both_flips(NORMAL)),
    (480, lambda lab: lab.stop_instance("registrar")),
    (570, lambda lab: lab.start_registrar(REGISTRAR)),
    (720, lambda lab: lab.log("scenario end")),
]
CAPPED: Final[list[Step]] = [
    (0, _start_capped),
    (180, lambda lab: lab.stop_instance("registrar2")),
    (240, lambda lab: lab.start_registrar(CAPPED_REGISTRAR)),
    (360, lambda lab: lab.log("scenario end")),
]


def _start_default_timer(lab: Lab) -> None:
    lab.start_registrar(REGISTRAR)
    time.sleep(1)
    lab.start_registrant(REGISTRANT_D)


def _reload_d(lab: Lab) -> None:
    lab.act("d", "dbt_reload")
    lab.act("d", "reg_reload")


DEFAULT_TIMER: Final[list[Step]] = [
    (0, _start_default_timer),
    (150, lambda lab: lab.act("d", "reg_disable", _aor("dis2", REGISTRANT_D))),
    (270, lambda lab: lab.act("d", "reg_enable", _aor("dis2", REGISTRANT_D))),
    (330, _reload_d),
    (400, lambda lab: lab.stop_instance("registrar")),
    (450, lambda lab: lab.start_registrar(REGISTRAR)),
    (600, lambda lab: lab.log("scenario end")),
]


def _start_pending(lab: Lab) -> None:
    lab.start_registrar(REGISTRAR)
    time.sleep(1)
    lab.start_registrant(REGISTRANT_E)


def _when_pending(user: str, command: Callable[[Lab], None]) -> Callable[[Lab], None]:
    """Run `command` as soon as `user`'s REGISTER waits for its reply."""

    def step(lab: Lab) -> None:
        aor = f"sip:{user}@127.0.0.1"
        deadline = time.time() + 120
        while time.time() < deadline:
            records = (lab.mi("e", "reg_list") or {}).get("Records", [])
            state = next((r["state"] for r in records if r["AOR"] == aor), None)
            if state in ("REGISTERING_STATE", "AUTHENTICATING_STATE"):
                lab.log(f"pending e/{user}", state=state)
                command(lab)
                return
            time.sleep(0.2)
        lab.log(f"never pending e/{user}")

    return step


def _reload_e(lab: Lab) -> None:
    lab.act("e", "dbt_reload")
    lab.act("e", "reg_reload")


PENDING: Final[list[Step]] = [
    (0, _start_pending),
    (
        30,
        lambda lab: lab.act(
            "registrar", "shv_set", {"name": "pend", "type": "int", "value": SLOW}
        ),
    ),
    (31, _when_pending("pendrel", _reload_e)),
    (
        32,
        _when_pending(
            "pendis",
            lambda lab: lab.act("e", "reg_disable", _aor("pendis", REGISTRANT_E)),
        ),
    ),
    (150, lambda lab: lab.act("e", "reg_enable", _aor("pendis", REGISTRANT_E))),
    (
        200,
        lambda lab: lab.act(
            "registrar", "shv_set", {"name": "pend", "type": "int", "value": NORMAL}
        ),
    ),
    (300, lambda lab: lab.log("scenario end")),
]
SCENARIOS: Final = {
    "main": MAIN,
    "capped": CAPPED,
    "default_timer": DEFAULT_TIMER,
    "pending": PENDING,
}


def run(src: Path, run_dir: Path, scenario: list[Step]) -> None:
    """Run a scenario with recording; stop everything, whatever happens."""
    lab = Lab(src, run_dir)
    lab.log("scenario start")
    try:
        for at, step in scenario:
            time.sleep(max(0.0, lab.t0 + at - time.time()))
            step(lab)
            if not lab._recorder and lab.registrants:  # noqa: SLF001
                lab.start_recording()
    finally:
        lab.finish()


def main() -> None:
    """Parse the command line and run a scenario."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True, help="built OpenSIPS tree")
    parser.add_argument("--run", type=Path, required=True, help="output folder")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="main")
    args = parser.parse_args()
    if not (args.src / "opensips").exists():
        sys.exit(f"{args.src}/opensips not found: run scripts/opensips/build first")
    run(args.src, args.run, SCENARIOS[args.scenario])
    print(f"recorded in {args.run}")


if __name__ == "__main__":
    main()
