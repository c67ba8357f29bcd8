"""The embedded warehouse's credential file and the request checks that need no server."""

from __future__ import annotations

import base64
import stat

import pytest

from gantry.credentials import warehouse_password_file
from warehouse.access import LOOPBACK_NAMES, USER, Credential, embedded_credential, host_allowed, presented
from warehouse.guard import Refused, check_settings


def test_the_credential_is_made_once_private_and_kept(tmp_path):
    user, password = embedded_credential(tmp_path)
    path = warehouse_password_file(tmp_path)
    assert user == USER and len(password) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert embedded_credential(tmp_path) == (user, password)
    assert [p.name for p in path.parent.iterdir()] == ["warehouse.password"]  # no temporary file left


def test_an_empty_credential_file_is_replaced_not_served(tmp_path):
    path = warehouse_password_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("\n")
    _, password = embedded_credential(tmp_path)
    assert password and path.read_text().strip() == password
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_credential_as_each_client_sends_it():
    basic = "Basic " + base64.b64encode(b"gantry:p:w").decode()
    assert presented({"Authorization": basic}, {}) == ("gantry", "p:w")
    assert presented({"X-ClickHouse-User": "gantry", "X-ClickHouse-Key": "pw"}, {}) == ("gantry", "pw")
    assert presented({}, {"user": "gantry", "password": "pw"}) == ("gantry", "pw")
    assert presented({"Authorization": "Basic !!!"}, {}) == (None, None)
    assert presented({}, {}) == (None, None)
    credential = Credential("gantry", "pw")
    assert credential.admits("gantry", "pw")
    assert not credential.admits("gantry", "pw2") and not credential.admits(None, None)
    assert not credential.admits("gantry\0pw", "")  # the separator cannot be smuggled in


@pytest.mark.parametrize("host, allowed", [
    ("127.0.0.1:8123", True), ("localhost", True), ("LocalHost.:8123", True), ("[::1]:8123", True), ("::1", False),
    ("evil.example", False), ("127.0.0.1.evil.example:8123", False), ("", False), (None, False), ("[::1", False),
    ("localhost:http", False),
])  # fmt: skip
def test_host_names_of_this_machine_only(host, allowed):
    assert host_allowed(host, LOOPBACK_NAMES) is allowed


def test_a_configured_name_is_accepted():
    assert host_allowed("warehouse.internal:8123", LOOPBACK_NAMES | {"warehouse.internal"})


def test_only_the_clickhouse_dialect_is_parsed():
    check_settings({"dialect": "clickhouse", "max_threads": "2"})
    for dialect in ("prql", "kusto"):
        with pytest.raises(Refused, match="ACCESS_DENIED"):
            check_settings({"dialect": dialect})
