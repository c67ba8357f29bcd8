"""`gantry ingest serve` over HTTPS: cameras on networks the city does not own send tokens and
plates encrypted; plain HTTP to the same port gets nothing, and a bad key pair stops start-up."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gantry import topics
from gantry.events import PlateRead, decode
from ingest.examples import gantry_json

pytestmark = pytest.mark.integration


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as a site's own CA would issue."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gantry-ingest-test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "ingest.crt", folder / "ingest.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_reads_arrive_over_https_and_plain_http_is_refused(broker, make_server, tmp_path, topic_records) -> None:
    cert_file, key_file = self_signed(tmp_path)
    server = make_server(broker.bootstrap_servers, tmp_path, tls_cert_file=cert_file, tls_key_file=key_file)
    server.start()
    try:
        ts = datetime.now(UTC) - timedelta(minutes=1)
        answer = httpx.post(f"{server.url}/v1/reads", content=gantry_json("TLS1ONE", ts, "evt-tls"),
                            headers={"X-Gantry-Token": "token-one", "Content-Type": "application/json"},
                            verify=str(cert_file))
        assert answer.status_code == 200, answer.text
        [record] = topic_records(broker.bootstrap_servers, topics.PLATE_READS, b"TLS1ONE", 1, 20)
        assert decode(PlateRead, record.value).read_id == answer.json()["read_id"]
        with pytest.raises(httpx.TransportError):
            httpx.get(server.url.replace("https://", "http://") + "/v1/plate", timeout=5)
        with pytest.raises(httpx.ConnectError):  # a client that checks certificates against the public CAs
            httpx.get(f"{server.url}/v1/plate", timeout=5)
    finally:
        server.stop()


def test_a_certificate_without_its_key_stops_start_up_naming_the_files(broker, tmp_path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "other").mkdir()
    cert_file, _ = self_signed(tmp_path / "one")
    _, other_key = self_signed(tmp_path / "other")
    config = tmp_path / "gantry.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(tmp_path / "data"), "broker": {"bootstrap_servers": broker.bootstrap_servers},
        "ingest": {"http_host": "127.0.0.1", "http_port": 0, "tls_cert_file": str(cert_file),
                   "tls_key_file": str(other_key)},
    }))
    done = subprocess.run([sys.executable, "-m", "ingest", "serve"], capture_output=True, text=True, timeout=60,
                          env=os.environ | {"GANTRY_CONFIG": str(config)})
    assert done.returncode != 0
    assert "ingest.tls_cert_file" in done.stderr and str(other_key) in done.stderr, done.stderr[-2000:]
