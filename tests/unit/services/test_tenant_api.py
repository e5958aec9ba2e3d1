"""The tenant API (services/tenant_api.py): it believes the X-Remote-* headers only over the hub's
front-proxy client certificate, authorizes the user by the hub's authorizer per request, and
streams the logs of the right attempt. The TLS is real (openssl-made certificates); the hub and
the member are stand-ins. The whole chain on the test bed: tests/e2e/test_plugin.py."""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from interconnect.adapters import access
from interconnect.adapters.access import FrontProxyConfig, UserInfo, parse_front_proxy_config, user_from_headers
from interconnect.adapters.member_logs import AttemptPod, MemberLogError, project_attempt_pod
from interconnect.services import tenant_api
from interconnect.services.tenant_api import (
    LogQuery,
    RequestError,
    TenantApi,
    TenantApiSettings,
    attempt_node,
    log_targets,
    split_lines,
)

# ------------------------------------------------------------------ pure parts


def test_the_front_proxy_config_is_read_as_the_api_server_writes_it() -> None:
    config = parse_front_proxy_config({
        "requestheader-client-ca-file": "PEM", "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-username-headers": '["X-Remote-User"]', "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]', "client-ca-file": "OTHER"})
    assert config.client_ca == "PEM" and config.allowed_names == ("front-proxy-client",)
    assert config.username_headers == ("X-Remote-User",)
    bare = parse_front_proxy_config({"client-ca-file": "OTHER"})
    assert bare.client_ca == "" and bare.allowed_names == (), "no requestheader CA: none, never the client CA"


def test_the_user_comes_from_the_configured_headers() -> None:
    config = FrontProxyConfig("PEM")
    user = user_from_headers([("x-remote-user", "alice"), ("X-Remote-Group", "team-a"),
                              ("X-Remote-Group", "system:authenticated"), ("X-Remote-Extra-Scopes%2Fa", "x"),
                              ("X-Remote-Uid", "42"), ("X-Other", "y")], config)
    assert user == UserInfo("alice", "42", ("team-a", "system:authenticated"), {"scopes/a": ("x",)})
    assert user_from_headers([("X-Remote-Group", "g")], config) is None
    custom = FrontProxyConfig("PEM", username_headers=("X-Forwarded-User",))
    assert user_from_headers([("X-Remote-User", "mallory")], custom) is None


def test_the_review_asks_about_the_job_for_the_user() -> None:
    body = access.review_body(UserInfo("alice", "", ("g",), {"k": ("v",)}), verb="get", group="interconnect.dev",
                              resource="computejobs", namespace="a", name="train")
    assert body["spec"] == {"user": "alice", "groups": ["g"], "extra": {"k": ["v"]}, "resourceAttributes": {
        "namespace": "a", "verb": "get", "group": "interconnect.dev", "resource": "computejobs", "name": "train"}}


def test_log_queries_are_checked() -> None:
    assert LogQuery.parse({"follow": "true", "attempt": "2", "tailLines": "0"}) == LogQuery(
        attempt=2, follow=True, tail_lines=0)
    for bad in ({"attempt": "0"}, {"attempt": "x"}, {"limitBytes": "0"}):
        with pytest.raises(RequestError) as caught:
            LogQuery.parse(bad)
        assert caught.value.code == 400


def job(attempts: int = 2, **status: Any) -> dict[str, Any]:
    history = [{"attempt": 1, "node": "gz", "memberJobName": "j-1"}]
    return {"metadata": {"name": "train", "namespace": "a", "uid": "u"},
            "status": {"attempts": attempts, "attemptHistory": history,
                       "placement": {"node": "sh"}, **status}}


def test_the_attempt_and_its_node() -> None:
    assert attempt_node(job(), None) == (2, "sh"), "the latest by default, on its placement's node"
    assert attempt_node(job(), 1) == (1, "gz"), "an earlier one on the node its history names"
    for bad, code in (((job(), 3), 404), ((job(attempts=0), None), 409)):
        with pytest.raises(RequestError) as caught:
            attempt_node(*bad)  # type: ignore[arg-type]
        assert caught.value.code == code


def test_the_log_targets() -> None:
    pods = [AttemptPod("p-0", "Running", ("train", "side"), True), AttemptPod("p-1", "Pending", ("train", "side"),
                                                                            False)]
    assert log_targets(pods, LogQuery(), "it") == [("p-0", "train"), ("p-0", "side")]
    assert log_targets(pods, LogQuery(container="train"), "it") == [("p-0", "train")]
    for query, code in ((LogQuery(pod="p-1"), 409), (LogQuery(pod="p-9"), 404), (LogQuery(container="x"), 400)):
        with pytest.raises(RequestError) as caught:
            log_targets(pods, query, "it")
        assert caught.value.code == code
    many = [AttemptPod(f"p-{i}", "Running", ("train",), True) for i in range(tenant_api.MAX_FOLLOWED + 1)]
    with pytest.raises(RequestError):
        log_targets(many, LogQuery(follow=True), "it")
    assert len(log_targets(many, LogQuery(), "it")) == tenant_api.MAX_FOLLOWED + 1, "read one by one"


def test_a_pod_that_never_ran_has_no_log() -> None:
    pending = project_attempt_pod({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]},
                                   "status": {"phase": "Pending", "containerStatuses": [
                                       {"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}]}})
    assert not pending.started and pending.containers == ("c",)
    done = project_attempt_pod({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]},
                                "status": {"phase": "Failed", "containerStatuses": [
                                    {"name": "c", "state": {"terminated": {"exitCode": 1}}}]}})
    assert done.started


def test_lines_are_split_across_chunks() -> None:
    assert split_lines(b"ab", b"c\nde\nf") == ([b"abc", b"de"], b"f")


def test_settings() -> None:
    assert TenantApiSettings.from_env({}) is None
    with pytest.raises(ValueError):
        TenantApiSettings.from_env({"INTERCONNECT_TENANT_API_PORT": "8443"})
    settings = TenantApiSettings.from_env({"INTERCONNECT_TENANT_API_PORT": "8443", "INTERCONNECT_TENANT_API_CERT": "c",
                                           "INTERCONNECT_TENANT_API_KEY": "k",
                                           "INTERCONNECT_TENANT_API_PROXY_NAMES": "a, b"})
    assert settings is not None and settings.proxy_names == ("a", "b") and settings.address == "0.0.0.0"


# ------------------------------------------------------------------ the server, over real TLS


def openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def signed(cwd: Path, name: str, cn: str, ext: str) -> None:
    openssl(cwd, "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr")
    (cwd / f"{name}.ext").write_text(ext + "\n")
    openssl(cwd, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=front-proxy-ca", "-keyout", "ca.key",
            "-out", "ca.crt", "-days", "1")
    signed(d, "proxy", "front-proxy-client", "extendedKeyUsage=clientAuth")
    signed(d, "other", "someone-else", "extendedKeyUsage=clientAuth")
    signed(d, "server", "tenant-api", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    # A client certificate from another CA: the handshake itself fails.
    rogue = d / "rogue"
    rogue.mkdir()
    openssl(rogue, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=front-proxy-client",
            "-keyout", "c.key", "-out", "c.crt", "-days", "1", "-addext", "extendedKeyUsage=clientAuth")
    return d


class FakeHub:
    def __init__(self) -> None:
        self.jobs = {("a", "train"): job(attempts=1, placement={"node": "gz"})}
        self.records = [
            {"metadata": {"name": "u-1"}, "spec": {"tenant": "a", "cost": "1"}},
            {"metadata": {"name": "v-1"}, "spec": {"tenant": "b", "cost": "9"}},  # a wrong label: never served
        ]
        self.selectors: list[str | None] = []

    async def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.jobs.get((namespace or "", name))

    async def list_all(self, plural: str, selector: str | None = None) -> list[dict[str, Any]]:
        self.selectors.append(selector)
        return self.records


class FakeLog:
    def __init__(self, pod: str, container: str) -> None:
        self.pod, self.container, self.closed = pod, container, False

    async def chunks(self) -> AsyncIterator[bytes]:
        yield f"{self.container} starts\n{self.container} ".encode()
        yield b"ends\n"

    def close(self) -> None:
        self.closed = True


class Member:
    api: Any = None
    namespace = "jobs"


class Controller:
    class members:
        @staticmethod
        def connected(name: str) -> Any:
            return Member() if name == "gz" else None


@pytest.fixture
async def server(certs: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[TenantApi, list[Any]]]:
    reviews: list[Any] = []

    async def may(api: Any, user: UserInfo, **attributes: Any) -> tuple[bool, str]:
        reviews.append((user, attributes))
        return user.name == "alice", "" if user.name == "alice" else "no RBAC rule"

    async def pods(member: Any, uid: str, attempt: int) -> list[AttemptPod]:
        return [AttemptPod("p-0", "Running", ("train", "side"), True)]

    async def open_log(member: Any, pod: str, container: str, **options: Any) -> FakeLog:
        if container == "broken":
            raise MemberLogError(502, "the member answered 500")
        return FakeLog(pod, container)

    monkeypatch.setattr(tenant_api, "may", may)
    monkeypatch.setattr(tenant_api, "attempt_pods", pods)
    monkeypatch.setattr(tenant_api, "open_pod_log", open_log)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = TenantApiSettings(port=port, cert_file=str(certs / "server.crt"), key_file=str(certs / "server.key"),
                                 address="127.0.0.1", proxy_ca_file=str(certs / "ca.crt"),
                                 proxy_names=("front-proxy-client",))
    api = TenantApi(None, settings, controller=lambda: Controller())  # type: ignore[arg-type,return-value]
    api.hub = FakeHub()  # type: ignore[assignment]
    await api.start()
    try:
        yield api, reviews
    finally:
        await api.stop()


def client_ssl(certs: Path, cert: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs / "server.crt"))
    context.load_verify_locations(cafile=str(certs / "ca.crt"))
    if cert == "rogue":
        context.load_cert_chain(certs / "rogue" / "c.crt", certs / "rogue" / "c.key")
    elif cert:
        context.load_cert_chain(certs / f"{cert}.crt", certs / f"{cert}.key")
    return context


async def get(server: TenantApi, certs: Path, path: str, cert: str | None = "proxy",
              headers: dict[str, str] | None = None) -> tuple[int, str]:
    url = f"https://127.0.0.1:{server.settings.port}{path}"
    async with aiohttp.ClientSession() as session, session.get(url, ssl=client_ssl(certs, cert),
                                                               headers=headers or {}) as response:
        return response.status, await response.text()


LOG = "/apis/tenant.interconnect.dev/v1alpha1/namespaces/a/computejobs/train/log"
ALICE = {"X-Remote-User": "alice", "X-Remote-Group": "system:authenticated"}


async def test_only_the_front_proxy_may_name_a_user(server: tuple[TenantApi, list[Any]], certs: Path) -> None:
    api, reviews = server
    for cert in (None, "other"):
        status, body = await get(api, certs, LOG, cert=cert, headers=ALICE)
        assert status == 401, (cert, body)
        assert json.loads(body)["kind"] == "Status"
    with pytest.raises(aiohttp.ClientError):
        await get(api, certs, LOG, cert="rogue", headers=ALICE)
    status, _ = await get(api, certs, LOG, headers={"X-Remote-Group": "g"})
    assert status == 401, "no user named"
    assert reviews == [], "nothing was asked of the hub for an unauthenticated request"
    assert (await get(api, certs, "/healthz", cert=None))[0] == 200


async def test_the_user_is_authorized_per_request_for_the_job(server: tuple[TenantApi, list[Any]],
                                                              certs: Path) -> None:
    api, reviews = server
    status, body = await get(api, certs, LOG, headers={"X-Remote-User": "bob"})
    assert status == 403
    assert json.loads(body)["message"].startswith('computejobs.interconnect.dev "train" is forbidden: User "bob"')
    status, body = await get(api, certs, LOG, headers=ALICE)
    assert status == 200, body
    assert body.splitlines() == ["[pod/p-0/train] train starts", "[pod/p-0/train] train ends",
                                 "[pod/p-0/side] side starts", "[pod/p-0/side] side ends"]
    user, attributes = reviews[-1]
    assert user.name == "alice" and user.groups == ("system:authenticated",)
    assert attributes == {"verb": "get", "group": "interconnect.dev", "resource": "computejobs", "namespace": "a",
                          "name": "train"}
    status, body = await get(api, certs, LOG + "?container=train&follow=true", headers=ALICE)
    assert (status, body) == (200, "train starts\ntrain ends\n"), "one container: its bytes, unprefixed"
    status, body = await get(api, certs, LOG.replace("train/log", "nope/log"), headers=ALICE)
    assert status == 404


async def test_a_namespace_bill_is_its_records_only(server: tuple[TenantApi, list[Any]], certs: Path) -> None:
    api, reviews = server
    path = "/apis/tenant.interconnect.dev/v1alpha1/namespaces/a/usages?labelSelector=interconnect.dev/month%3D2026-11"
    status, body = await get(api, certs, path, headers=ALICE)
    assert status == 200, body
    assert [r["metadata"]["name"] for r in json.loads(body)["items"]] == ["u-1"]
    assert api.hub.selectors[-1] == "interconnect.dev/tenant=a,interconnect.dev/month=2026-11"  # type: ignore[attr-defined]
    assert reviews[-1][1]["verb"] == "list"
    assert (await get(api, certs, path, headers={"X-Remote-User": "bob"}))[0] == 403


async def test_discovery(server: tuple[TenantApi, list[Any]], certs: Path) -> None:
    api, _ = server
    status, body = await get(api, certs, "/apis/tenant.interconnect.dev/v1alpha1")
    assert status == 200
    assert {r["name"] for r in json.loads(body)["resources"]} == {"computejobs/log", "usages"}
    assert (await get(api, certs, "/apis/tenant.interconnect.dev/v1alpha1", cert=None))[0] == 401


def test_no_requestheader_ca_means_no_start() -> None:
    """Without a front-proxy CA no request can be told to come from the API server: the tenant
    API refuses to start rather than believe headers from anyone."""
    import asyncio

    async def main() -> None:
        api = TenantApi(None, TenantApiSettings(0, "c", "k"))  # type: ignore[arg-type]

        async def nothing() -> FrontProxyConfig:
            return FrontProxyConfig("")

        api.load_proxy_config = nothing  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="requestheader"):
            await api.start()

    asyncio.run(main())
