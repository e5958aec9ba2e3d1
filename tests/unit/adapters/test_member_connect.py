"""A broken kubeconfig Secret is reported without quoting it: the error reaches the ComputeNode's
status (Ready=False, ConnectionFailed), which every catalogue reader may read."""

from __future__ import annotations

import pytest

from interconnect.adapters.member import MemberCluster

TOKEN = "sEcReT-t0ken-do-not-show"
CONTEXT = "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
CLUSTERS = "clusters: [{name: c, cluster: {server: 'https://member.example:6443'}}]\n"


def ignore(*_: object) -> None:
    pass


@pytest.mark.parametrize("kubeconfig", [
    # YAML errors quote the offending line
    CLUSTERS + CONTEXT + f"users:\n- name: u\n  user:\n    token: {TOKEN}: oops\n",
    CLUSTERS + CONTEXT + f'users: [{{name: u, user: {{token: "{TOKEN}}}]\n',
    CLUSTERS + CONTEXT + f"users:\n- name: u\n  user:\n    token: {TOKEN}\n\t  x: y\n",
    # the client's own errors
    CLUSTERS + CONTEXT + f"users: {{name: u, user: {{token: {TOKEN}}}}}\n",
    CLUSTERS + CONTEXT + f"users: [{{name: u, user: 'token: {TOKEN}'}}]\n",
    CLUSTERS + CONTEXT
    + f"users: [{{name: u, user: {{client-key-data: {TOKEN}, client-certificate-data: {TOKEN}}}}}]\n",
    CLUSTERS.replace("server:", f"certificate-authority-data: {TOKEN}, server:") + CONTEXT
    + f"users: [{{name: u, user: {{token: {TOKEN}}}}}]\n",
])
async def test_a_broken_kubeconfig_is_refused_without_quoting_it(kubeconfig: str) -> None:
    with pytest.raises(ValueError) as caught:
        await MemberCluster.connect("gz-regional", kubeconfig, "interconnect-jobs", ignore)
    message = str(caught.value)
    assert message and TOKEN not in message and "t0ken" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_the_yaml_error_says_where() -> None:
    broken = CLUSTERS + CONTEXT + f"users:\n- name: u\n  user:\n    token: {TOKEN}: oops\n"
    with pytest.raises(ValueError, match=r"not valid YAML at line 7, column \d+"):
        await MemberCluster.connect("gz-regional", broken, "interconnect-jobs", ignore)
