"""DSN parsing and the HTTP request rules of the embedded server, without services."""

from __future__ import annotations

import pytest

from gantry.errors import ConfigError
from warehouse.client import parse_dsn
from warehouse.server import _INSERT_WITH_DATA, QueryFailed, parse_request


def test_chdb_and_http_dsns():
    assert parse_dsn("chdb:///var/lib/gantry").path == "/var/lib/gantry"
    assert parse_dsn("chdb://memory").path is None
    server = parse_dsn("https://ana%40city:s3cret@ch.example:9443/traffic")
    assert (server.host, server.port, server.username, server.password, server.database) == (
        "ch.example", 9443, "ana@city", "s3cret", "traffic")  # fmt: skip
    assert "s3cret" not in server.redacted()
    assert parse_dsn("http://127.0.0.1").port == 8123


@pytest.mark.parametrize("dsn, problem", [("ftp://x", "unknown scheme"), ("http://:99", "no host"),
                                           ("http://h:port", "not a number")])  # fmt: skip
def test_bad_dsns_say_what_is_wrong(dsn, problem):
    with pytest.raises(ConfigError, match=problem):
        parse_dsn(dsn)


def test_url_parameters_split_into_settings_params_and_transport():
    request = parse_request(
        "query=SELECT+%7Bn%3AUInt8%7D&database=g&param_n=5&max_threads=2&query_id=q1&enable_http_compression=1",
        {}, b"",
    )  # fmt: skip
    assert request.statement == b"SELECT {n:UInt8}"
    assert (request.database, request.query_id) == ("g", "q1")
    assert request.params == {"n": "5"} and request.settings == {"max_threads": "2"}


def test_query_parameter_and_body_join_with_a_newline():
    assert parse_request("query=INSERT+INTO+t+FORMAT+CSV", {}, b"1,2\n").statement == b"INSERT INTO t FORMAT CSV\n1,2\n"


def test_native_block_compression_is_refused_clearly():
    with pytest.raises(QueryFailed, match="not supported"):
        parse_request("compress=1&query=SELECT+1", {}, b"")


def test_insert_data_starts_after_one_newline():
    body = b"INSERT INTO t (a, b) SETTINGS async_insert=0 FORMAT Native\n\n\x02data"
    match = _INSERT_WITH_DATA.match(body)
    assert match.group(1) == b"INSERT INTO t (a, b)" and match.group(3) == b"Native"
    assert match.group(2).strip() == b"SETTINGS async_insert=0"
    assert body[match.end():] == b"\n\x02data"
