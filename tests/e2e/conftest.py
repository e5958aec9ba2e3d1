"""The market (CRDs, members joined, offers, the operator process) and a real Prometheus."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests import testbed as tb
from tests.e2e import market as m


@pytest.fixture(scope="session")
def metrics_port() -> int:
    return m.free_port()


@pytest.fixture(scope="session")
def operator(testbed: tb.Testbed, tmp_path_factory: pytest.TempPathFactory, metrics_port: int) -> Iterator[m.Operator]:
    log_dir = tmp_path_factory.mktemp("operator")
    # A joined member's token (10 minutes in test_charts.py) is renewed after 2% of it, about 12 s;
    # the market's kubeconfigs carry client certificates, which are not renewed.
    env = {"INTERCONNECT_METRICS_PORT": str(metrics_port), "INTERCONNECT_TOKEN_RENEW_FRACTION": "0.02"}
    with m.running_market(testbed, log_dir, env) as op:
        yield op


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}", timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]["result"]  # type: ignore[no-any-return]

    def rules(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v1/rules", timeout=10) as r:
            body = json.loads(r.read())
        return body["data"]["groups"]  # type: ignore[no-any-return]

    def scalar(self, promql: str, at: float | None = None) -> float:
        result = self.query(promql, at)
        return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory, metrics_port: int) -> Iterator[Prometheus]:
    """Debian's Prometheus, scraping the operator every second (installed by hack/ensure-deps)."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: hack/ensure-deps installs Debian's prometheus package"
    work = tmp_path_factory.mktemp("prometheus")
    config = work / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(m.REPO / "deploy" / "alerts" / "interconnect.rules.yaml")],
        "scrape_configs": [{"job_name": "interconnect", "static_configs": [
            {"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }))
    port = m.free_port()
    log = open(work / "prometheus.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError((work / "prometheus.log").read_text()[-2000:]) from None
            time.sleep(0.3)
    try:
        yield Prometheus(url)
    finally:
        proc.terminate()
        proc.wait(15)


