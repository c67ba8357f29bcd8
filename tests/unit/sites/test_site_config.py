import pytest
from site_examples import site

from gantry.config import GantryConfig, load_config
from gantry.errors import ConfigError
from gantry.sites import OpeningHours, ParkingTariff

SITE_YAML = """\
cameras:
  - {id: gate-in, lat: 51.5, lon: -0.1}
  - {id: gate-out, lat: 51.5, lon: -0.1}
sites:
  - id: hq
    gates:
      - {camera: gate-in, direction: entry, car_park: p1}
      - {camera: gate-out, direction: exit, car_park: p1}
    lists:
      - {list: staff, access: allow}
    car_parks:
      - id: p1
        capacity: 10
        tariff: {per_hour: 2, daily_cap: 12}
"""


def test_a_site_loads_from_yaml(tmp_path):
    path = tmp_path / "gantry.yaml"
    path.write_text(SITE_YAML)
    config = load_config(path)
    (hq,) = config.sites
    assert hq.car_park("p1").tariff.daily_cap == 12 and hq.unknown_plates == "deny" and not hq.fuzzy_match


@pytest.mark.parametrize(("change", "message"), [
    ("tariff: {per_hour: 2, daily_cap: 12}", None),
    ("tariff: {daily_cap: 12}", "either per_hour or bands"),
    ("tariff: {per_hour: 2}", "without a daily_cap"),
    ("tariff: {per_hour: 2, daily_cap: 12, bands: [{up_to_minutes: 60, price: 1}]}", "either per_hour or bands"),
    ("tariff: {daily_cap: 9, bands: [{up_to_minutes: 60, price: 1}, {up_to_minutes: 30, price: 2}]}",
     "up_to_minutes must increase"),
])
def test_tariff_errors_say_what_to_fix(tmp_path, change, message):
    path = tmp_path / "gantry.yaml"
    path.write_text(SITE_YAML.replace("tariff: {per_hour: 2, daily_cap: 12}", change))
    if message is None:
        load_config(path)
        return
    with pytest.raises(ConfigError, match=message) as raised:
        load_config(path)
    assert "gantry.yaml:" in str(raised.value) and "sites.0.car_parks.0.tariff" in str(raised.value)


def test_a_gate_on_an_unknown_camera_is_refused(tmp_path):
    path = tmp_path / "gantry.yaml"
    path.write_text(SITE_YAML.replace("camera: gate-out", "camera: gate-elsewhere"))
    with pytest.raises(ConfigError, match="gate on unknown camera gate-elsewhere"):
        load_config(path)


def test_site_cross_checks():
    with pytest.raises(ValueError, match="unknown car_park 'p2'"):
        site(gates=[{"camera": "a", "direction": "entry", "car_park": "p2"}])
    with pytest.raises(ValueError, match="needs an entry gate and an exit gate"):
        site(gates=[{"camera": "a", "direction": "entry", "car_park": "p1"}])
    with pytest.raises(ValueError, match="camera a is on two gates"):
        site(gates=[{"camera": "a", "direction": "entry"}, {"camera": "a", "direction": "exit"}])
    with pytest.raises(ValueError, match="list staff named twice"):
        site(lists=[{"list": "staff", "access": "allow"}, {"list": "staff", "access": "deny"}])
    with pytest.raises(ValueError, match="hours only apply to allow lists"):
        site(lists=[{"list": "banned", "access": "deny", "hours": {"mon": []}}])
    with pytest.raises(ValueError, match="unknown time zone"):
        site(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="unknown_plates"):
        site(unknown_plates="maybe")


def test_two_sites_cannot_share_a_camera_or_a_car_park_id():
    one = site().model_dump(mode="json")
    other = one | {"id": "other"}
    with pytest.raises(ValueError, match="gate of two sites|defined twice"):
        GantryConfig(sites=[one, other])


def test_opening_hours():
    with pytest.raises(ValueError, match="not after start"):
        OpeningHours(start="19:00", end="07:00")
    late = OpeningHours(start="18:00", end="00:00")
    assert late.covers("23:59:59") and late.covers("18:00") and not late.covers("17:59")
    day = OpeningHours(start="07:00", end="19:00")
    assert day.covers("07:00") and not day.covers("19:00")


def test_missed_read_fees_default_to_the_daily_cap():
    tariff = ParkingTariff(per_hour="2", daily_cap="12", missed_entry_fee="30")
    assert tariff.lost_exit == 12 and tariff.lost_entry == 30
