"""Each values file is rendered once per session; tests read the manifests as plain dicts."""

from __future__ import annotations

from collections.abc import Iterator

import helm_python as helm
import pytest
from chart_release import CHART_DIR, VALUES_FILES, Release, load_values, render, with_service_monitor


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="session", params=VALUES_FILES)
def release(request: pytest.FixtureRequest, chart: helm.Chart) -> Release:
    values = load_values(request.param)
    return Release(request.param, chart.merge_values(values), render(chart, values))


@pytest.fixture(scope="session", params=VALUES_FILES)
def monitored_release(request: pytest.FixtureRequest, chart: helm.Chart) -> Release:
    """A release of each values file with metrics.serviceMonitor.enabled."""
    values = with_service_monitor(load_values(request.param))
    return Release(request.param, chart.merge_values(values), render(chart, values))
