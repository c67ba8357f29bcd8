"""``gantry report``: the panels' data as PNG charts and one HTML page, without Grafana."""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import pytest
from conftest import END, START, gantry_cli
from matplotlib import image
from typer.testing import CliRunner

from warehouse.grafana.dashboards import all_dashboards
from warehouse.grafana.report import render_report

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report(filled, config, tmp_path_factory):
    client, _ = filled
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


def test_pngs_are_real_non_trivial_images(report, filled):
    out, _, _ = report
    client, _ = filled
    has_failures_table = bool(client.query("EXISTS TABLE webhook_failures").result_rows[0][0])
    failures_chart = "gantry-hotlist-02.png"
    for png in sorted(out.glob("*.png")):
        if png.name == failures_chart and not has_failures_table:
            continue
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = image.imread(png)
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 500, png.name
        distinct = len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0))
        # a chart has axes, text and data in several colours; an empty canvas has one or two
        assert distinct > 20, f"{png.name} looks blank ({distinct} colours)"
        assert png.stat().st_size > 5_000, png.name
    if not has_failures_table:
        assert "query failed" in (out / "index.html").read_text()
        pytest.skip("delivery-failures chart not checked: no webhook_failures table yet")


def test_report_refuses_bad_arguments_before_touching_the_warehouse(tmp_path):
    runner = CliRunner()
    cases = {
        ("--from", "yesterday"): "not a time: 'yesterday'",
        ("--from", "now", "--to", "now-1h"): "is not after --from",
        ("--var", "camera"): "expected name=value",
    }
    for args, message in cases.items():
        result = runner.invoke(
            gantry_cli(), ["report", *args, "--out", str(tmp_path)], env={"GANTRY_CONFIG": ""}
        )
        assert result.exit_code == 2, result.output
        assert message in result.output
