"""The embedded server speaks enough ClickHouse HTTP for clickhouse-connect and plain HTTP tools."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from warehouse.client import connect, parse_dsn

pytestmark = pytest.mark.integration

COLUMNS = ["id", "name", "ts", "amount", "note"]


@pytest.fixture
def table(served_dsn: str, database: str):
    client = connect(served_dsn, database)
    client.command(f"CREATE DATABASE `{database}`", use_database=False)
    client.command(
        "CREATE TABLE t (id UInt32, name String, ts DateTime64(3, 'UTC'), amount Decimal(12, 2), "
        "note Nullable(String)) ENGINE = MergeTree ORDER BY id"
    )
    yield client
    client.command(f"DROP DATABASE `{database}`", use_database=False)


def rows(n: int) -> list[tuple]:
    ts = datetime(2026, 11, 21, 8, 30, 0, 123000, tzinfo=UTC)
    return [(i, f"plate-{i}", ts, Decimal("12.50"), None if i % 2 else "x") for i in range(n)]


@pytest.mark.parametrize("compress", ["lz4", "zstd", "gzip", False])
def test_insert_and_query_round_trip(table, served_dsn, database, compress):
    dsn = parse_dsn(served_dsn)
    client = clickhouse_connect.get_client(host="127.0.0.1", port=dsn.port, username=dsn.username,
                                           password=dsn.password, database=database, compress=compress)  # fmt: skip
    summary = client.insert("t", rows(3000), column_names=COLUMNS)
    assert summary.written_rows == 3000
    result = client.query("SELECT count(), sum(amount), countIf(note IS NULL), max(ts) FROM t")
    count, total, nulls, latest = result.result_rows[0]
    assert (count, total, nulls) == (3000, Decimal("37500.00"), 1500)
    assert latest.replace(tzinfo=UTC) == datetime(2026, 11, 21, 8, 30, 0, 123000, tzinfo=UTC)


def test_bound_parameters_and_settings(table):
    table.insert("t", rows(10), column_names=COLUMNS)
    found = table.query("SELECT name FROM t WHERE id = {id:UInt32}", parameters={"id": 7}).result_rows
    assert found == [("plate-7",)]
    assert table.command("SELECT getSetting('max_threads')", settings={"max_threads": 3}) == 3
    # settings are per request: the next one sees the default again
    assert table.command("SELECT getSetting('max_threads')") != 3


def test_command_arrow_and_empty_result(table):
    table.insert("t", rows(5), column_names=COLUMNS)
    assert table.command("SELECT count() FROM t") == 5
    assert table.query_arrow("SELECT id FROM t ORDER BY id").column("id").to_pylist() == [0, 1, 2, 3, 4]
    assert table.query("SELECT * FROM t LIMIT 0").column_names == tuple(COLUMNS)
    assert table.command("SELECT name FROM t WHERE id = 999") == ""


def test_error_is_a_clickhouse_exception_and_server_survives(table):
    with pytest.raises(DatabaseError) as failure:
        table.query("SELECT no_such_column FROM t")
    assert failure.value.code == 47
    assert "UNKNOWN_IDENTIFIER" in str(failure.value)
    with pytest.raises(DatabaseError):
        table.raw_insert("t", COLUMNS, b'{"id": "not a number"}\n', fmt="JSONEachRow")
    assert table.command("SELECT 1") == 1


def test_plain_http_get_ping_and_error_status(served_dsn):
    assert httpx.get(f"{served_dsn}/ping").text == "Ok.\n"
    assert httpx.get(served_dsn, params={"query": "SELECT 1 + 1"}).text == "2\n"
    response = httpx.post(served_dsn, content=b"SELEC 1")
    assert response.status_code == 500
    assert response.headers["X-ClickHouse-Exception-Code"] == "62"
    assert response.text.startswith("Code: 62. DB::Exception:")
