"""The search API against real services: `gantry warehouse serve` (chDB behind the ClickHouse HTTP
interface, as `gantry up` runs it), the session's broker, a snapshot store on disk, and the API
itself served by uvicorn on a free port.

The data is a small city relative to now: plate AB12CDE past three cameras, a confusable
A812CDE, a wildcard-only AB512XY, 25 reads of ZZ99ZZZ for paging (some delivered twice), one read
ten days old (beyond the analyst's one-day look-back, within the operator's thirty), and hits on
two lists.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

import pytest
import uvicorn
import yaml
from api_helpers import ANALYST, CAMERAS, OPERATOR, PSEUDONYM_KEY, REPO, hit_of, insert, plate_picture, read
from waiting import wait_until

from api.app import create_app
from gantry.broker import free_port
from gantry.config import GantryConfig
from gantry.credentials import warehouse_password_file
from gantry.events import HotlistHit, PlateRead
from gantry.processes import stop, wait_healthy
from ingest.snapshots import SnapshotStore
from warehouse.access import embedded_credential
from warehouse.client import connect
from warehouse.migrations import migrate


@dataclass
class City:
    reads: dict[str, PlateRead]
    hits: list[HotlistHit]
    pictures: dict[str, bytes]
    paging: list[PlateRead]


@pytest.fixture(scope="session")
def served_warehouse(tmp_path_factory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("api-warehouse")
    port, health = free_port(), free_port()
    user, password = embedded_credential(data_dir)
    log = open(data_dir / "serve.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-c", "from warehouse.cli import app; app()", "serve", "--port", str(port),
         "--health-port", str(health), "--password-file", str(warehouse_password_file(data_dir))],
        env={k: v for k, v in os.environ.items() if not k.startswith("GANTRY_")}
        | {"PYTHONPATH": str(REPO), "GANTRY_DATA_DIR": str(data_dir)},
        cwd=data_dir, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_healthy(process, health, what="warehouse serve")
        yield f"http://{user}:{quote(password, safe='')}@127.0.0.1:{port}"
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="session")
def api_config(tmp_path_factory, served_warehouse, broker) -> GantryConfig:
    root = tmp_path_factory.mktemp("api")
    tokens = root / "api-tokens.yaml"
    tokens.write_text(yaml.safe_dump({"olivia": {"role": "operator", "token": OPERATOR},
                                      "arthur": {"role": "analyst", "token": ANALYST}}))  # fmt: skip
    key = root / "pseudonym.key"
    key.write_text(PSEUDONYM_KEY)
    return GantryConfig(
        data_dir=root / "data",
        broker={"bootstrap_servers": broker.bootstrap_servers},
        warehouse={"dsn": served_warehouse, "database": f"api_{uuid.uuid4().hex[:10]}"},
        privacy={"pseudonym_key_file": key},
        ingest={"snapshot_url": (root / "snapshots").as_uri()},
        api={"tokens_file": tokens, "roles": {"operator": {"max_lookback_days": 30},
                                               "analyst": {"max_lookback_days": 1}}},
        cameras=CAMERAS,
    )  # fmt: skip


@pytest.fixture(scope="session")
def warehouse_client(api_config):
    client = connect(api_config.warehouse.dsn, api_config.warehouse.database)
    migrate(client, api_config.warehouse.retention_days)
    yield client
    client.command(f"DROP DATABASE IF EXISTS `{api_config.warehouse.database}`", use_database=False)


@pytest.fixture(scope="session")
def city(api_config, warehouse_client) -> City:
    store = SnapshotStore(api_config.ingest.snapshot_url)
    reads: dict[str, PlateRead] = {}
    pictures: dict[str, bytes] = {}
    for name, plate, camera, ago in [
        ("ab_cam1", "AB12CDE", "cam1", timedelta(hours=3)),
        ("ab_cam2", "AB12CDE", "cam2", timedelta(hours=2)),
        ("ab_cam3", "AB12CDE", "cam3", timedelta(hours=1)),
        ("a8_cam2", "A812CDE", "cam2", timedelta(minutes=90)),
        ("ab5_cam3", "AB512XY", "cam3", timedelta(minutes=30)),
        ("old_cam1", "OLD1234", "cam1", timedelta(days=10)),
    ]:
        r = read(plate, camera, ago)
        jpeg = plate_picture(plate, camera)
        image = store.put(r.ts, camera, r.read_id, "overview", jpeg) if name != "ab_cam3" else None
        reads[name] = r.model_copy(update={"image_ref": image})
        if image:
            pictures[name] = jpeg
    paging = [read("ZZ99ZZZ", "cam1" if i % 2 else "cam2", timedelta(minutes=200 - i), i) for i in range(25)]
    insert(warehouse_client, "plate_reads", list(reads.values()) + paging)
    insert(warehouse_client, "plate_reads", paging[5:12])  # delivered twice: still one read each
    hits = [hit_of(reads["ab_cam1"], "AB12CDE", "stolen", 1), hit_of(reads["ab_cam2"], "AB12CDE", "stolen", 1),
            hit_of(reads["a8_cam2"], "AB12CDE", "stolen", 1), hit_of(reads["ab5_cam3"], "AB512XY", "wanted", 4)]
    insert(warehouse_client, "hotlist_hits", hits)
    return City(reads, hits, pictures, paging)


class ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # not the main thread
        pass


@pytest.fixture(scope="session")
def api_url(api_config, city) -> Iterator[str]:
    app = create_app(api_config)
    port = free_port()
    server = ThreadedServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, "the API")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def operator() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR}"}


@pytest.fixture
def analyst() -> dict[str, str]:
    return {"Authorization": f"Bearer {ANALYST}"}
