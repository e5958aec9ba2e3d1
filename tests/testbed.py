"""The tests' view of the test bed: kubeconfigs and clients per cluster.

The clusters come from ``hack/testbed`` (real control planes on this machine), or, when
``INTERCONNECT_KUBECONFIG_DIR`` names a directory of ``<cluster>.kubeconfig`` files (``hub``,
``member-1``, ...), from whatever those point at: kind clusters made by ``hack/kind-up``,
for instance. Tests see the same interface either way.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Cluster:
    name: str
    kubeconfig: Path
    context: str
    region: str | None = None

    def api(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig), context=self.context)


@dataclass
class Testbed:
    clusters: dict[str, Cluster]
    kubectl: str
    helm: str
    started_here: bool = False
    _clients: dict[str, client.ApiClient] = field(default_factory=dict)

    @property
    def hub(self) -> Cluster:
        return self.clusters["hub"]

    @property
    def members(self) -> list[Cluster]:
        return [c for name, c in sorted(self.clusters.items()) if name != "hub"]

    def api(self, name: str) -> client.ApiClient:
        if name not in self._clients:
            self._clients[name] = self.clusters[name].api()
        return self._clients[name]

    def kubectl_cmd(self, cluster: str, *args: str) -> list[str]:
        c = self.clusters[cluster]
        return [self.kubectl, "--kubeconfig", str(c.kubeconfig), "--context", c.context, *args]

    def close(self) -> None:
        for api in self._clients.values():
            api.close()
        self._clients.clear()


def from_kubeconfig_dir(directory: Path) -> Testbed:
    clusters = {}
    for path in sorted(directory.glob("*.kubeconfig")):
        name = path.name.removesuffix(".kubeconfig")
        _, active = config.list_kube_config_contexts(config_file=str(path))
        clusters[name] = Cluster(name, path, active["name"])
    if "hub" not in clusters:
        raise RuntimeError(f"{directory} has no hub.kubeconfig")
    return Testbed(clusters, os.environ.get("KUBECTL", "kubectl"), os.environ.get("HELM", "helm"))


def start(members: int) -> Testbed:
    """Start (or reuse) the local test bed; builds missing binaries rather than skipping."""
    state_dir = Path(os.environ.get("INTERCONNECT_TESTBED_DIR", REPO / ".testbed"))
    was_running = (state_dir / "testbed.json").exists() and subprocess.run(
        [REPO / "hack" / "testbed", "status"], capture_output=True).returncode == 0
    subprocess.run([REPO / "hack" / "testbed", "up", "--members", str(members)], check=True,
                   stdout=subprocess.DEVNULL)
    state = json.loads((state_dir / "testbed.json").read_text())
    bin_dir = Path(state["bin"])
    clusters = {
        name: Cluster(name, Path(info["kubeconfig"]), info["context"], info.get("region"))
        for name, info in state["clusters"].items()
    }
    return Testbed(clusters, str(bin_dir / "kubectl"), str(bin_dir / "helm"), started_here=not was_running)


def stop() -> None:
    subprocess.run([REPO / "hack" / "testbed", "down"], check=True)


def component_pid(cluster: str, component: str) -> int:
    """The process id of one control-plane component of a local test bed cluster (e.g. kube-apiserver)."""
    state_dir = Path(os.environ.get("INTERCONNECT_TESTBED_DIR", REPO / ".testbed"))
    return int((state_dir / "kwok" / "clusters" / cluster / "pids" / f"{component}.pid").read_text().strip())


def kwokctl(bed: Testbed, *args: str) -> None:
    """Run kwokctl on the local test bed (stop or start a cluster's processes)."""
    state_dir = Path(os.environ.get("INTERCONNECT_TESTBED_DIR", REPO / ".testbed"))
    state = json.loads((state_dir / "testbed.json").read_text())
    env = dict(os.environ, KWOK_WORKDIR=str(state_dir / "kwok"), KWOK_KUBECTL_BINARY=bed.kubectl)
    subprocess.run([str(Path(state["bin"]) / "kwokctl"), *args], env=env, check=True, capture_output=True)
