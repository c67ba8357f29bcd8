import pytest

from gantry.config import load_config
from gantry.errors import ConfigError

CITY = """\
data_dir: data
cameras:
  - id: cam1
    lat: 51.5
    lon: -0.12
  - id: cam2
    lat: 51.51
    lon: -0.11
segments:
  - id: s1
    from_camera: cam1
    to_camera: cam2
    distance_m: 800
zones:
  - id: centre
    cameras: [cam1]
    tariff:
      timezone: Europe/London
      daily_charge: {car: 15}
"""


def write(tmp_path, text):
    path = tmp_path / "gantry.yaml"
    path.write_text(text)
    return path


def test_defaults_describe_the_embedded_stack(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.broker.bootstrap_servers is None
    assert config.warehouse.dsn is None
    assert config.warehouse.retention_days.plate_reads == 90


def test_a_city_file_loads_and_data_dir_is_relative_to_it(tmp_path):
    config = load_config(write(tmp_path, CITY))
    assert [c.id for c in config.cameras] == ["cam1", "cam2"]
    assert config.segments[0].max_travel_s == 3600
    assert config.data_dir == (tmp_path / "data").resolve()


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTRY_BROKER__BOOTSTRAP_SERVERS", "kafka-1:9092")
    monkeypatch.setenv("GANTRY_WAREHOUSE__BATCH_ROWS", "500")
    config = load_config(write(tmp_path, CITY + "warehouse:\n  batch_rows: 20\n"))
    assert config.broker.bootstrap_servers == "kafka-1:9092"
    assert config.warehouse.batch_rows == 500


def test_error_names_file_line_and_key(tmp_path):
    path = write(tmp_path, CITY.replace("lat: 51.51", "lat: 151.51"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{path}:7: cameras.1.lat: Input should be less than or equal to 90" in str(err.value)


def test_unknown_key_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"gantry.yaml:\d+: brokr: Extra inputs are not permitted"):
        load_config(write(tmp_path, CITY + "brokr: {}\n"))


def test_segment_with_unknown_camera_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="segment s1: unknown camera 'cam9'"):
        load_config(write(tmp_path, CITY.replace("to_camera: cam2", "to_camera: cam9")))


def test_unknown_time_zone_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="zones.0.tariff.timezone.*unknown time zone 'Mars/Olympus'"):
        load_config(write(tmp_path, CITY.replace("Europe/London", "Mars/Olympus")))


def test_duplicate_camera_ids_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="cameras: duplicate id cam1"):
        load_config(write(tmp_path, CITY.replace("id: cam2", "id: cam1")))


def test_duplicate_subscriber_ids_are_rejected(tmp_path):
    twice = "hotlist:\n  subscribers:\n" + "    - {id: police, url: 'https://a.example/hits', secret_env: S}\n" * 2
    with pytest.raises(ConfigError, match="hotlist.subscribers: duplicate id police"):
        load_config(write(tmp_path, CITY + twice))


def test_a_tls_certificate_needs_its_key(tmp_path):
    with pytest.raises(ConfigError, match="tls_cert_file and tls_key_file go together"):
        load_config(write(tmp_path, CITY + "ingest:\n  tls_cert_file: /etc/gantry/ingest.crt\n"))


def test_missing_file_and_bad_yaml_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "cameras: [\n"))
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("cameras:\n  - id: gare-du-nord\n    name: Gare du Nord (entrée)\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.yaml:3: not UTF-8 text \(byte 0xe9\)"):
        load_config(latin1)


def test_endpoints_come_from_config_or_the_running_stack(tmp_path):
    import json

    from gantry.errors import StackError
    from gantry.runtime import endpoints

    config = load_config(write(tmp_path, CITY))
    with pytest.raises(StackError, match="no broker address.*gantry up"):
        _ = endpoints(config).bootstrap_servers
    config.data_dir.mkdir()
    (config.data_dir / "stack.json").write_text(json.dumps({"broker": "127.0.0.1:1", "warehouse": "http://h:2"}))
    assert endpoints(config).bootstrap_servers == "127.0.0.1:1"
    assert endpoints(config).warehouse_dsn == "http://h:2"
    override = config.model_copy(update={"broker": config.broker.model_copy(update={"bootstrap_servers": "k:9"})})
    assert endpoints(override).bootstrap_servers == "k:9"


def test_plate_formats_are_checked_at_load(tmp_path):
    with pytest.raises(ConfigError, match=r"recognize.formats.ca.1: Value error, 'LL-NN' is not a plate format"):
        load_config(write(tmp_path, CITY + "recognize:\n  formats:\n    ca: [LLLLNNN, LL-NN]\n"))
    config = load_config(write(tmp_path, CITY + "recognize:\n  regions: [ca]\n  formats:\n    ca: [LLLLNNN, 'L{2}N{3,4}']\n"))
    assert config.recognize.formats == {"ca": ["LLLLNNN", "L{2}N{3,4}"]}


def test_event_time_window_defaults_and_bounds(tmp_path):
    config = load_config(write(tmp_path, "data_dir: data\n"))
    assert config.event_time.max_future_s == 300
    assert config.event_time.max_past_s == 3 * 86_400
    with pytest.raises(ConfigError, match="event_time.max_future_s"):
        load_config(write(tmp_path, "event_time:\n  max_future_s: 1.0e12\n"))
    with pytest.raises(ConfigError, match="event_time.max_past_s"):
        load_config(write(tmp_path, "event_time:\n  max_past_s: -1\n"))


def test_event_time_refusal_names_the_bound_and_the_key(tmp_path):
    from datetime import UTC, datetime, timedelta

    window = load_config(write(tmp_path, "data_dir: data\n")).event_time
    received = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert window.refusal(received + timedelta(seconds=299), received) is None
    assert window.refusal(received - timedelta(days=2), received) is None
    ahead = window.refusal(datetime(9999, 12, 31, 23, 59, tzinfo=UTC), received)
    assert ahead is not None and "9999-12-31" in ahead and "event_time.max_future_s" in ahead
    behind = window.refusal(datetime(1, 1, 1, tzinfo=UTC), received)
    assert behind is not None and "event_time.max_past_s" in behind


def test_tariff_plates_are_normalised_at_load_and_foreign_letters_refused(tmp_path):
    exempt = CITY + "      exemptions:\n        - plate: ав 123\n"
    config = load_config(write(tmp_path, exempt))
    assert config.zones[0].tariff.exemptions[0].plate == "AB123"
    with pytest.raises(ConfigError, match="exemptions.0.plate"):
        load_config(write(tmp_path, CITY + "      exemptions:\n        - plate: 京A12345\n"))
