"""hack/run-chart-pods without a cluster or root: what it would give the hub chart's containers.

The harness itself runs in tests/e2e/test_chart_operator.py; here, the parts a mistake in which
would make that test prove less: the environment and argv as a kubelet makes them, the ports
moved per replica, the service account volume, the image tag check, path resolution in the image.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.unit.generate.test_alerts import helm

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("run_chart_pods", str(REPO / "hack" / "run-chart-pods"))
    spec = importlib.util.spec_from_loader("run_chart_pods", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_chart_pods"] = module
    loader.exec_module(module)
    return module


cp = _load()


class FakeHub:
    """The hub as the kubelet part reads it: one Service, kube-root-ca.crt, tokens."""

    def __init__(self) -> None:
        self.tokens: list[tuple[str, str, int]] = []

    def server(self) -> tuple[str, int]:
        return "127.0.0.1", 32764

    def list(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        return [{"metadata": {"name": "interconnect-hub-metrics"},
                 "spec": {"clusterIP": "10.96.0.7", "ports": [{"name": "metrics", "port": 9090, "protocol": "TCP"}]}}]

    def get(self, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        return {"data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"}} if name == "kube-root-ca.crt" else None

    def token(self, service_account: str, namespace: str, seconds: int) -> str:
        self.tokens.append((service_account, namespace, seconds))
        return "a.b.c"


def _image(tmp_path: Path, tag: str = "0.1.0") -> Any:
    rootfs = tmp_path / "bundle" / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nnonroot:x:65532:65532::/home/nonroot:/x\n")
    (rootfs / "run").mkdir()
    (rootfs / "var").mkdir()
    (rootfs / "var" / "run").symlink_to("/run")
    return cp.Image(Path(), tmp_path / "bundle", tag, "sha256:0", {
        "Entrypoint": ["/opt/interconnect/bin/interconnect"], "Cmd": ["run"], "User": "65532:65532",
        "WorkingDir": "/home/nonroot", "Env": ["PATH=/opt/interconnect/bin:/usr/bin:/bin", "LANG=C.UTF-8"]})


@pytest.fixture(scope="module")
def deployment() -> dict[str, Any]:
    return cp.render_deployment("rel", "interconnect-system", ["--set", "replicaCount=2"], "v1.36.3",  # type: ignore[no-any-return]
                                helm=helm())


def test_the_container_gets_the_chart_s_args_and_env_with_its_own_ports(deployment: dict[str, Any],
                                                                      tmp_path: Path) -> None:
    pods = cp.ChartPods(deployment, hub=FakeHub(), image=_image(tmp_path), state=tmp_path / "state")
    assert len(pods.replicas) == 2
    a, b = pods.replicas
    assert a.name != b.name and a.name.startswith("interconnect-hub-") and len(a.name.split("-")[-1]) == 5
    env, argv = pods.environment(a)
    # The image's entrypoint, the chart's args; the liveness port moved to this replica's.
    assert argv[:3] == ["/opt/interconnect/bin/interconnect", "run", "--liveness"]
    assert argv[3] == f"http://0.0.0.0:{a.ports['health']}/healthz" and a.ports["health"] != 8080
    assert env["INTERCONNECT_METRICS_PORT"] == str(a.ports["metrics"])
    assert pods.environment(b)[0]["INTERCONNECT_METRICS_PORT"] != env["INTERCONNECT_METRICS_PORT"]
    assert len(a.rewrites) == 2, a.rewrites
    # fieldRefs, the image's env, HOSTNAME as the runtime sets it, the hub's address, service links.
    assert (env["POD_ID"], env["HOSTNAME"], env["POD_NAMESPACE"]) == (a.name, a.name, "interconnect-system")
    assert env["LANG"] == "C.UTF-8" and env["PATH"].startswith("/opt/interconnect/bin")
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("127.0.0.1", "32764")
    assert env["INTERCONNECT_HUB_METRICS_SERVICE_HOST"] == "10.96.0.7"
    assert "KUBECONFIG" not in env


def test_the_pod_runs_as_its_user_read_only_with_the_service_account_volume(deployment: dict[str, Any],
                                                                           tmp_path: Path) -> None:
    hub = FakeHub()
    pods = cp.ChartPods(deployment, hub=hub, image=_image(tmp_path), state=tmp_path / "state")
    spec = pods.container_spec(pods.replicas[0])
    assert (spec["uid"], spec["gid"], spec["groups"]) == (65532, 65532, [])
    assert spec["readOnlyRootFilesystem"] is True and spec["noNewPrivs"] is True and spec["bounding"] == []
    assert spec["cwd"] == "/home/nonroot"
    targets = {mount["target"]: mount for mount in spec["mounts"]}
    assert targets["/tmp"]["readOnly"] is False
    sa = targets[cp.SA_DIR]
    assert sa["readOnly"] is True
    files = {p.name: p.read_text() for p in Path(sa["source"]).iterdir() if not p.name.startswith("..")}
    assert files == {"token": "a.b.c", "ca.crt": "-----BEGIN CERTIFICATE-----\n", "namespace": "interconnect-system"}
    assert hub.tokens == [("interconnect-hub", "interconnect-system", 3607)]


def test_an_image_with_another_tag_is_refused(deployment: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"tagged 9\.9\.9"):
        cp.ChartPods(deployment, hub=FakeHub(), image=_image(tmp_path, tag="9.9.9"), state=tmp_path)


def test_paths_resolve_inside_the_image_and_never_out_of_it(tmp_path: Path) -> None:
    root = _image(tmp_path).rootfs
    assert cp.resolve_in_root(root, cp.SA_DIR) == root / "run" / "secrets" / "kubernetes.io" / "serviceaccount"
    (root / "escape").symlink_to("../../../../etc")
    assert cp.resolve_in_root(root, "/escape/passwd") == root / "etc" / "passwd"


def test_kubernetes_expansion_and_quantities() -> None:
    assert cp.expand("$(A)-$$(A)-$(B)", {"A": "x"}) == "x-$(A)-$(B)"
    assert cp.quantity("512Mi") == 512 * 2**20 and cp.quantity("200m") == pytest.approx(0.2)
    assert cp.quantity("2") == 2
