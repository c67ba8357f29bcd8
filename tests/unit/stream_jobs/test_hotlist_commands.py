"""`gantry hotlist remove` names a plate it cannot normalise instead of removing a shortened one."""

from typer.testing import CliRunner

from gantry.cli import app


def test_removing_a_plate_with_foreign_letters_fails_before_reaching_the_broker(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # built-in defaults: nothing is reached before the plate is checked
    result = CliRunner().invoke(app, ["hotlist", "remove", "--plate", "京A12345", "--list", "stolen"])
    assert result.exit_code != 0
    assert "--plate" in result.output and "not a plate letter" in result.output
