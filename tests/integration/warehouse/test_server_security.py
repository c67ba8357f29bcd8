"""Who may ask the embedded server what: each defence tried against the real process and chDB.

The server runs with a credential and an 8 MiB body limit (``served_dsn`` in conftest.py). Every
attack here is one that worked before the defence: a browser page's GET, a DNS-rebound host name,
a compressed bomb, or SQL reaching the file system or the network.
"""

from __future__ import annotations

import gzip
import socket
import zlib

import httpx
import lz4.frame
import pytest
from backports import zstd

from warehouse.client import parse_dsn

pytestmark = pytest.mark.integration

LIMIT = 8 * 1024 * 1024  # the fixture's --max-body-bytes


@pytest.fixture(scope="module")
def server(served_dsn):
    """(base URL, (user, password)) of the served warehouse."""
    dsn = parse_dsn(served_dsn)
    return f"http://127.0.0.1:{dsn.port}", (dsn.username, dsn.password)


@pytest.fixture
def table(server, database):
    """A table in a database of the test's own, made over POST with the credential."""
    base, auth = server
    for sql in (f"CREATE DATABASE `{database}`", f"CREATE TABLE `{database}`.t (x UInt32) ENGINE = MergeTree ORDER BY x",
                f"INSERT INTO `{database}`.t SELECT number FROM numbers(3)"):  # fmt: skip
        assert httpx.post(base, content=sql.encode(), auth=auth).status_code == 200, sql
    yield f"`{database}`.t"
    httpx.post(base, content=f"DROP DATABASE `{database}`".encode(), auth=auth)


def count(server, table) -> str:
    base, auth = server
    return httpx.post(base, content=f"SELECT count() FROM {table}".encode(), auth=auth).text


def test_queries_without_the_credential_are_refused(server):
    base, (user, password) = server
    for auth in (None, (user, "wrong"), ("default", ""), ("someone", password)):
        response = httpx.post(base, content=b"SELECT 1", auth=auth)
        assert response.status_code == 401, auth
        assert response.headers["X-ClickHouse-Exception-Code"] == "516"
        assert response.text.startswith("Code: 516. DB::Exception:") and password not in response.text
    assert httpx.get(f"{base}/ping").text == "Ok.\n"  # liveness needs no credential, as on ClickHouse


def test_every_way_clients_send_the_credential_is_accepted(server):
    base, (user, password) = server
    ways = [
        {"auth": (user, password)},  # HTTP Basic: clickhouse-connect, Grafana
        {"headers": {"X-ClickHouse-User": user, "X-ClickHouse-Key": password}},
        {"params": {"user": user, "password": password}},
    ]
    for way in ways:
        response = httpx.post(base, content=b"SELECT 1", **way)
        assert (response.status_code, response.text) == (200, "1\n"), way


@pytest.mark.parametrize("sql", ["SELECT count() FROM {t}", "WITH 2 AS n SELECT n", "SHOW TABLES", "DESCRIBE TABLE {t}",
                                 "EXISTS TABLE {t}", "EXPLAIN SELECT 1"])  # fmt: skip
def test_get_runs_reads(server, table, sql):
    base, auth = server
    response = httpx.get(base, params={"query": sql.format(t=table)}, auth=auth)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "sql, settings",
    [("DROP TABLE {t}", {}), ("TRUNCATE TABLE {t}", {}), ("INSERT INTO {t} VALUES (7)", {}),
     ("INSERT INTO {t} SELECT 7", {}), ("ALTER TABLE {t} DELETE WHERE 1", {}), ("DROP TABLE {t}", {"readonly": "0"}),
     ("INSERT INTO {t} SELECT 7 SETTINGS readonly = 0", {}), ("CREATE TABLE {t}2 (x UInt8) ENGINE = Memory", {})],
)  # fmt: skip
def test_get_writes_nothing_whatever_a_page_puts_in_the_url(server, table, sql, settings):
    """A browser sends GETs for <img src=...> with the user's credentials cached: GET is read-only."""
    base, auth = server
    response = httpx.get(base, params={"query": sql.format(t=table), **settings}, auth=auth)
    assert response.status_code == 403, response.text
    assert response.headers["X-ClickHouse-Exception-Code"] in ("164", "497")  # READONLY, or the guard's refusal
    assert count(server, table) == "3\n"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8123", "127.0.0.1.nip.io", ""])
def test_a_host_header_naming_another_machine_is_refused(server, host):
    """DNS rebinding: a page on evil.example re-resolved to 127.0.0.1 still sends Host: evil.example."""
    base, auth = server
    for path in ("/", "/ping"):
        response = httpx.post(base + path, content=b"SELECT 1", auth=auth, headers={"Host": host})
        assert response.status_code == 403, (host, path)


def test_loopback_host_names_are_accepted(server):
    base, auth = server
    port = base.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost", "LOCALHOST."):
        assert httpx.post(base, content=b"SELECT 1", auth=auth, headers={"Host": host}).status_code == 200, host


def raw_request(base: str, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send a hand-made request and read the status line: httpx will not send what attackers do."""
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        reply = b""
        while chunk := sock.recv(65536):  # the server closes: the rest of the body is not read
            reply += chunk
    return int(reply.split(b" ", 2)[1]), reply


def _basic(auth) -> bytes:
    return httpx.BasicAuth(*auth)._auth_header.encode()


def test_a_body_declared_beyond_the_limit_is_refused_before_it_is_read(server):
    base, auth = server
    head = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + _basic(auth)
            + b"\r\nContent-Length: 1099511627776\r\n\r\n")  # fmt: skip
    status, reply = raw_request(base, head, b"SELECT 1")
    assert status == 413 and b"Code: 290." in reply


def test_a_chunked_body_beyond_the_limit_is_refused(server):
    base, auth = server
    head = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + _basic(auth)
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n")  # fmt: skip
    status, _ = raw_request(base, head, b"8\r\nSELECT 1\r\n10000000000\r\n" + b"x" * 1024)
    assert status == 413
    # and the same in chunks each within the limit, adding up beyond it
    chunk = b"%x\r\n" % (1024 * 1024) + b"-" * (1024 * 1024) + b"\r\n"
    response = httpx.post(base, content=iter([chunk[8:-2]] * (LIMIT // (1024 * 1024) + 1)), auth=auth)
    assert response.status_code == 413


COMPRESSORS = {"gzip": gzip.compress, "deflate": zlib.compress, "zstd": zstd.compress, "lz4": lz4.frame.compress}


@pytest.mark.parametrize("encoding", sorted(COMPRESSORS))
def test_a_compressed_body_that_inflates_beyond_the_limit_is_refused(server, table, encoding):
    base, auth = server
    bomb = COMPRESSORS[encoding](f"INSERT INTO {table} FORMAT CSV\n".encode() + b"1\n" * (LIMIT // 2 + 1))
    assert len(bomb) < LIMIT // 50
    response = httpx.post(base, content=bomb, auth=auth, headers={"Content-Encoding": encoding})
    assert response.status_code == 413 and response.text.startswith("Code: 290.")
    assert count(server, table) == "3\n"
    small = COMPRESSORS[encoding](f"INSERT INTO {table} FORMAT CSV\n".encode() + b"1\n" * 1000)
    assert httpx.post(base, content=small, auth=auth, headers={"Content-Encoding": encoding}).status_code == 200


OUTSIDE = [
    "SELECT * FROM file('/etc/hostname', 'LineAsString')",
    "SELECT file('/etc/hostname')",
    "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
    "SELECT * FROM s3('http://127.0.0.1:9/bucket/key.csv', 'CSV')",
    "SELECT * FROM remote('127.0.0.1:9', system.one)",
    "SELECT * FROM executable('id', 'TSV', 'line String')",
    "SELECT * FROM postgresql('127.0.0.1:9', 'db', 'table', 'user', 'password')",
    "INSERT INTO {t} SELECT * FROM file('/etc/hostname', 'LineAsString')",
    "INSERT INTO {t} FROM INFILE '/etc/hostname' FORMAT LineAsString",
    "INSERT INTO FUNCTION file('{tmp}/written.tsv', 'TSV') SELECT 1",
    "SELECT 1 INTO OUTFILE '{tmp}/written.tsv'",
    "CREATE TABLE {t}_file (line String) ENGINE = File(LineAsString, '/etc/hostname')",
    "CREATE TABLE {t}_url AS url('http://127.0.0.1:9/', 'LineAsString', 'line String')",
    "CREATE TABLE {t}_disk (x UInt8) ENGINE = MergeTree ORDER BY x SETTINGS disk = disk(type = local, path = '{tmp}/')",
    "CREATE DICTIONARY {t}_dict (k UInt64, v String) PRIMARY KEY k SOURCE(FILE(path '/etc/hostname' format 'TSV')) "
    "LAYOUT(FLAT()) LIFETIME(0)",
    "CREATE VIEW {t}_view AS SELECT * FROM file('/etc/hostname', 'LineAsString')",
    "BACKUP TABLE {t} TO File('{tmp}/backup')",
    "ATTACH TABLE {t}_attached FROM '{tmp}/attached' (x UInt8) ENGINE = MergeTree ORDER BY x",
    "SYSTEM SHUTDOWN",
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("sql", OUTSIDE)
def test_nothing_reaches_outside_the_warehouse(server, table, tmp_path, sql, method):
    """Table functions, engines and clauses that touch files, processes or the network are refused."""
    base, auth = server
    statement = sql.format(t=table, tmp=tmp_path)
    response = httpx.request(method, base, params={"query": statement}, auth=auth)
    assert response.status_code == 403, response.text
    assert response.headers["X-ClickHouse-Exception-Code"] in ("497", "164")
    assert list(tmp_path.iterdir()) == [] and count(server, table) == "3\n"
    assert httpx.post(base, content=b"SELECT 1", auth=auth).text == "1\n"  # and the server is still there


@pytest.mark.parametrize("sql", ["SELECT 1; SELECT * FROM file('/etc/hostname', 'LineAsString')",
                                 "INSERT INTO {t} VALUES (5); DROP TABLE {t}", "SELECT 1; DROP TABLE {t}"])  # fmt: skip
def test_one_statement_per_request(server, table, sql):
    """chDB runs every statement of a multi-statement string; the server checks and runs one."""
    base, auth = server
    response = httpx.post(base, content=sql.format(t=table).encode(), auth=auth)
    assert response.status_code != 200 and count(server, table) == "3\n"


def test_the_parser_cannot_be_swapped_under_the_check(server, table):
    """The check parses ClickHouse SQL; a request may not switch the statement to another dialect."""
    base, auth = server
    response = httpx.post(base, params={"dialect": "prql"}, content=b"from t | take 1", auth=auth)
    assert response.status_code == 403

