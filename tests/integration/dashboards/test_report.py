"""``gantry report``: the panels' data as PNG charts and one HTML page, without Grafana."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import timedelta

import numpy as np
import pytest
import yaml
from dashboards_data import CITY, END, GANTRY, START
from matplotlib import image
from typer.testing import CliRunner

from gantry.cli import app as gantry_app
from warehouse.grafana.dashboards import all_dashboards
from warehouse.grafana.report import render_report

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report(in_process, config, tmp_path_factory):
    client, _ = in_process
    out = tmp_path_factory.mktemp("report")
    seen = []
    page = render_report(
        client, all_dashboards(config), START - timedelta(days=1), END, out, on_panel=seen.append
    )
    return out, page, seen


def test_one_png_per_panel_linked_from_the_page(report, config):
    out, page, seen = report
    panels = [p for d in all_dashboards(config) for p in d.panels]
    assert seen == panels
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == len(panels)
    html = page.read_text()
    assert sorted(re.findall(r'<img src="([^"]+)"', html)) == [p.name for p in pngs]
    for title in ("City traffic", "Journey times", "Congestion zone", "Hotlist", "Peak hours"):
        assert title in html


def test_pngs_are_real_non_trivial_images(report):
    out, page, _ = report
    assert "query failed" not in page.read_text()
    for png in sorted(out.glob("*.png")):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = image.imread(png)
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 500, png.name
        rgba = (pixels * 255).astype(np.uint8).reshape(-1, 4)  # matplotlib writes RGBA in 0..1
        distinct = len(np.unique(rgba.view(np.uint32)))
        # a chart has axes, text and data in several colours; an empty canvas has one or two
        assert distinct > 20, f"{png.name} looks blank ({distinct} colours)"
        assert png.stat().st_size > 5_000, png.name


def test_report_refuses_bad_arguments_before_touching_the_warehouse(tmp_path):
    runner = CliRunner()
    cases = {
        ("--from", "yesterday"): "not a time: 'yesterday'",
        ("--from", "now", "--to", "now-1h"): "is not after --from",
        ("--var", "camera"): "expected name=value",
    }
    for args, message in cases.items():
        result = runner.invoke(
            gantry_app, ["report", *args, "--out", str(tmp_path)], env={"GANTRY_CONFIG": ""}
        )
        assert result.exit_code == 2, result.output
        assert message in result.output


def test_gantry_report_over_http_on_warehouse_serve(served, served_dsn, config, tmp_path):
    """The installed command, configured by a YAML file, reading the embedded server as the stack does."""
    config_file = tmp_path / "gantry.yaml"
    config_file.write_text(
        yaml.safe_dump(CITY | {"data_dir": str(tmp_path), "warehouse": {"dsn": served_dsn}})
    )
    out = tmp_path / "report"
    command = [
        GANTRY, "--config", config_file, "report", "--from", (START - timedelta(days=1)).isoformat(),
        "--to", END.isoformat(), "--out", out, "--var", "camera=c1,c3",
    ]  # fmt: skip
    result = subprocess.run(command, check=False, env=os.environ, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(out / "index.html") in result.stderr
    html = (out / "index.html").read_text()
    assert "query failed" not in html
    assert len(list(out.glob("*.png"))) == sum(len(d.panels) for d in all_dashboards(config))
    # the selection reached the SQL: two busiest cameras, and every hit (all were at c1 or c3)
    assert "Busiest cameras: 2 rows." in html
    assert f"Recent hits: {sum(served[1].hits_by_list.values())} rows." in html
