"""join and leave without a cluster: where the member's CA comes from now that there is no token
Secret, the lifetimes the command line accepts, and what leave says when it cannot revoke (the
revocation itself, against real API servers, is in tests/e2e/test_charts.py)."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import pytest
import yaml

from interconnect.cli.main import build_parser
from interconnect.cli.plugin import build_parser as plugin_parser
from interconnect.cli.registration import binding_secret_name, cluster_of, member_kubeconfig, revoke


def write_kubeconfig(path: Path, cluster: dict[str, object], context: str = "member-1") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": f"{context}-cluster", "cluster": cluster}],
        "users": [{"name": "admin", "user": {"client-certificate-data": "eA==", "client-key-data": "eQ=="}}],
        "contexts": [{"name": context, "context": {"cluster": f"{context}-cluster", "user": "admin"}}]}))
    return path


def test_the_ca_comes_from_the_member_contexts_cluster_as_data(tmp_path: Path) -> None:
    inline = write_kubeconfig(tmp_path / "a", {"server": "https://m:6443", "certificate-authority-data": "Q0E="})
    assert cluster_of(str(inline), "member-1") == {"server": "https://m:6443", "certificate-authority-data": "Q0E="}
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    relative = write_kubeconfig(tmp_path / "b", {"server": "https://m:6443", "certificate-authority": "pki/ca.crt",
                                                 "tls-server-name": "member"})
    cluster = cluster_of(str(relative), None)
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"-----BEGIN CERTIFICATE-----\n"
    assert cluster["tls-server-name"] == "member" and "certificate-authority" not in cluster
    with pytest.raises(SystemExit, match="no context 'member-9'"):
        cluster_of(str(inline), "member-9")


def test_the_context_is_found_in_any_file_of_KUBECONFIG(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = write_kubeconfig(tmp_path / "hub", {"server": "https://hub:6443"}, context="hub")
    member = write_kubeconfig(tmp_path / "member", {"server": "https://m:6443"})
    monkeypatch.setenv("KUBECONFIG", f"{hub}:{member}")
    assert cluster_of(None, "member-1")["server"] == "https://m:6443"


def test_the_hubs_kubeconfig_holds_the_token_and_nothing_of_the_installer() -> None:
    text = member_kubeconfig({"server": "https://m:6443", "certificate-authority-data": "Q0E="}, "tok", "jobs", "gz")
    config = yaml.safe_load(text)
    assert config["users"] == [{"name": "gz-hub", "user": {"token": "tok"}}]
    assert config["contexts"][0]["context"]["namespace"] == "jobs"
    assert binding_secret_name("interconnect-hub") == "interconnect-hub-binding"


def test_the_token_lifetime_option() -> None:
    args = build_parser().parse_args(["join", "--member-context", "m", "--hub-context", "h", "--values", "v"])
    assert args.token_lifetime == 43200
    args = build_parser().parse_args(["join", "--member-context", "m", "--hub-context", "h", "--values", "v",
                                      "--token-lifetime", "10m", "--hub-namespace", "hub-ns"])
    assert (args.token_lifetime, args.hub_namespace) == (600, "hub-ns")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["join", "--member-context", "m", "--hub-context", "h", "--values", "v",
                                   "--token-lifetime", "5m"])
    plugin = plugin_parser().parse_args(["join", "--member-context", "m", "--values", "v", "--token-lifetime", "1h"])
    assert plugin.token_lifetime == 3600


def test_every_join_flag_is_on_the_plugin_too() -> None:
    def flags(parser: object) -> set[str]:
        sub = next(a for a in parser._actions if a.dest == "command")  # type: ignore[attr-defined]
        join = sub.choices["join"]
        return {o for a in join._actions for o in a.option_strings}

    top = {o for a in plugin_parser()._actions for o in a.option_strings}
    assert flags(build_parser()) <= flags(plugin_parser()) | top
    args = plugin_parser().parse_args(["--context", "hub", "--kubeconfig", "k", "join", "--member-context", "m",
                                       "--values", "v", "--member-server", "https://m:6443"])
    assert (args.context, args.kubeconfig, args.member_server, args.hub_kubeconfig) == ("hub", "k", "https://m:6443",
                                                                                        None)
    token = plugin_parser().parse_args(["token", "create", "--node", "gz", "--ttl", "2h"])
    assert (token.action, token.node, token.ttl) == ("create", "gz", 7200)


def jwt(payload: dict[str, object]) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    return ".".join((part(b'{"alg":"RS256"}'), part(json.dumps(payload).encode()), part(b"sig")))


def test_leave_says_what_it_could_not_revoke(capsys: pytest.CaptureFixture[str]) -> None:
    certs = {"apiVersion": "v1", "current-context": "gz", "clusters": [{"name": "gz", "cluster": {
        "server": "https://127.0.0.1:1"}}], "contexts": [{"name": "gz", "context": {"cluster": "gz", "user": "u"}}],
        "users": [{"name": "u", "user": {"client-certificate-data": "eA==", "client-key-data": "eQ=="}}]}
    revoke(yaml.safe_dump(certs), "gz")
    assert "holds no token bound to a Secret: nothing to revoke" in capsys.readouterr().err
    with socket.socket() as s:   # a port where nothing listens: the member does not answer
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = jwt({"sub": "system:serviceaccount:interconnect-hub:interconnect-hub", "iat": 1, "exp": 601,
                 "kubernetes.io": {"secret": {"name": "interconnect-hub-binding", "uid": "u1"}}})
    bound = {**certs, "clusters": [{"name": "gz", "cluster": {"server": f"https://127.0.0.1:{port}",
                                                               "insecure-skip-tls-verify": True}}],
             "users": [{"name": "u", "user": {"token": token}}]}
    revoke(yaml.safe_dump(bound), "gz")
    err = capsys.readouterr().err
    assert "the member did not answer" in err and "were not revoked" in err
    assert "kubectl --context <member> -n interconnect-hub delete secret interconnect-hub-binding" in err
    assert token not in err


def test_a_registration_credential_is_for_one_well_named_node() -> None:
    from interconnect.cli.tokens import check_node_name, join_account, registration_kubeconfig

    assert join_account("gz-regional") == "interconnect-join-gz-regional"
    for bad in ("GZ", "gz_regional", "-gz", "x" * 50, ""):
        with pytest.raises(ValueError, match="--node"):
            check_node_name(bad)
    text = registration_kubeconfig({"server": "https://hub:6443", "certificate-authority-data": "Q0E="}, "tok",
                                   "gz-regional", "interconnect-system")
    config = yaml.safe_load(text)
    assert config["users"] == [{"name": "hub-join-gz-regional", "user": {"token": "tok"}}]
    assert config["clusters"][0]["cluster"]["server"] == "https://hub:6443"


def test_member_server_replaces_the_installer_s_address(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(yaml.safe_dump({
        "current-context": "m", "contexts": [{"name": "m", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443",
                                               "certificate-authority-data": "Q0E="}}]}))
    assert cluster_of(str(kubeconfig), None)["server"] == "https://127.0.0.1:6443"
    moved = cluster_of(str(kubeconfig), None, server="https://member.example:6443")
    assert moved == {"server": "https://member.example:6443", "certificate-authority-data": "Q0E="}
    with pytest.raises(SystemExit, match="https://"):
        cluster_of(str(kubeconfig), None, server="http://member.example")
