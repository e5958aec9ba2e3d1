"""Fixtures shared by the integration and e2e tests.

The test bed is started once per session, only when a test asks for it, and stopped at the
end if this session started it (set ``INTERCONNECT_KEEP_TESTBED=1`` to keep it for the next
run).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests import testbed as tb


@pytest.fixture(scope="session")
def testbed() -> Iterator[tb.Testbed]:
    directory = os.environ.get("INTERCONNECT_KUBECONFIG_DIR")
    if directory:
        bed = tb.from_kubeconfig_dir(Path(directory))
    else:
        bed = tb.start(int(os.environ.get("TESTBED_MEMBERS", "3")))
    os.environ.setdefault("KUBECTL", bed.kubectl)
    os.environ.setdefault("HELM", bed.helm)
    try:
        yield bed
    finally:
        bed.close()
        if bed.started_here and os.environ.get("INTERCONNECT_KEEP_TESTBED") != "1":
            tb.stop()


@pytest.fixture(scope="session")
def hub_kubeconfig(testbed: tb.Testbed) -> Path:
    return testbed.hub.kubeconfig


@pytest.fixture(scope="session")
def hub_api(testbed: tb.Testbed) -> client.ApiClient:
    return testbed.api("hub")


@pytest.fixture(scope="session")
def kubectl(testbed: tb.Testbed) -> str:
    return testbed.kubectl
