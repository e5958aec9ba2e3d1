"""The hub's bound token for a member (core/credentials.py): what a token says about itself, read
without verifying it; when to renew it; the lifetimes join accepts; the kubeconfig edits. And the
renewal's order of work (services/credentials.py), against stand-ins for the hub and member adapters:
the new token is stored on the hub before it is used, a re-join wins, a failure is retried later."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from interconnect.core.credentials import (
    CREDENTIALS_EXPIRED,
    REJOIN,
    ServiceAccountToken,
    check_renew_fraction,
    decode_token,
    expired,
    expired_message,
    kubeconfig_token,
    parse_lifetime,
    renew_at,
    renew_due,
    renewal_lifetime,
    with_token,
)
from interconnect.services.config import Settings
from interconnect.services.credentials import CredentialRenewer, Renewal

IAT = 1_760_000_000


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt(payload: dict[str, Any] | str) -> str:
    """A JWT as the API server issues it; the signature is junk (it is never checked here)."""
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return ".".join((b64url(b'{"alg":"RS256","kid":"k"}'), b64url(body.encode()), b64url(b"not-a-signature")))


def claims(*, lifetime: int = 43200, iat: int = IAT, secret: bool = True, **extra: Any) -> dict[str, Any]:
    k8s: dict[str, Any] = {"namespace": "interconnect-hub",
                           "serviceaccount": {"name": "interconnect-hub", "uid": "sa-uid"}}
    if secret:
        k8s["secret"] = {"name": "interconnect-hub-binding", "uid": "binding-uid"}
    return {"aud": ["https://kubernetes.default.svc"], "exp": iat + lifetime, "iat": iat, "nbf": iat,
            "iss": "https://kubernetes.default.svc", "jti": "j", "kubernetes.io": k8s,
            "sub": "system:serviceaccount:interconnect-hub:interconnect-hub", **extra}


def test_a_bound_service_account_token_is_read_without_verifying_it() -> None:
    token = decode_token(jwt(claims()))
    assert token == ServiceAccountToken(namespace="interconnect-hub", service_account="interconnect-hub",
                                        issued_at=IAT, expires_at=IAT + 43200, secret="interconnect-hub-binding",
                                        secret_uid="binding-uid")
    assert token.subject == "system:serviceaccount:interconnect-hub:interconnect-hub"
    assert token.lifetime == 43200
    unbound = decode_token(jwt(claims(secret=False)))
    assert unbound is not None and unbound.secret is None and unbound.secret_uid is None


@pytest.mark.parametrize("token", [
    "",
    "a-static-token",
    "abc.def",                                           # two parts
    "a.b.c.d",
    "..sig",
    jwt("not json"),
    jwt("[1, 2]"),
    jwt(claims(sub="alice")),                            # a user, not a service account
    jwt(claims(sub="system:serviceaccount:only-namespace")),
    jwt(claims(sub="system:serviceaccount:ns:a:b")),
    jwt({k: v for k, v in claims().items() if k != "exp"}),   # a legacy token: no expiry
    jwt(claims(exp="soon")),
    jwt(claims(exp=True)),
    jwt(claims(lifetime=0)),
    "eyJhbGciOiJSUzI1NiJ9.%%%%.sig",                     # not base64
])
def test_anything_else_is_not_a_service_account_token(token: str) -> None:
    assert decode_token(token) is None


def test_renewal_is_due_once_the_fraction_of_the_lifetime_has_passed() -> None:
    token = decode_token(jwt(claims(lifetime=600)))
    assert token is not None
    assert renew_at(token) == IAT + 300 and renew_at(token, 0.02) == IAT + 12
    assert not renew_due(token, IAT + 299.9)
    assert renew_due(token, IAT + 300) and renew_due(token, IAT + 599)
    assert not renew_due(token, IAT + 600), "an expired token cannot ask for its successor"
    assert renew_due(token, IAT + 12, fraction=0.02) and not renew_due(token, IAT + 11, fraction=0.02)
    assert not expired(token, IAT + 599.9) and expired(token, IAT + 600)


@given(lifetime=st.integers(600, 86400), fraction=st.floats(0.01, 0.99), at=st.integers(0, 100_000))
def test_renewal_is_due_exactly_between_the_mark_and_the_expiry(lifetime: int, fraction: float, at: int) -> None:
    token = ServiceAccountToken("ns", "sa", IAT, IAT + lifetime)
    now = IAT + at
    assert renew_due(token, now, fraction) == (IAT + fraction * lifetime <= now < IAT + lifetime)


def test_a_renewal_asks_for_the_current_lifetime_within_what_the_api_server_allows() -> None:
    assert renewal_lifetime(ServiceAccountToken("ns", "sa", IAT, IAT + 3600)) == 3600
    assert renewal_lifetime(ServiceAccountToken("ns", "sa", IAT, IAT + 60)) == 600
    assert renewal_lifetime(ServiceAccountToken("ns", "sa", IAT, IAT + 10**7)) == 86400


@pytest.mark.parametrize(("text", "seconds"), [
    ("12h", 43200), ("10m", 600), ("600s", 600), ("600", 600), ("1h30m", 5400), ("24h", 86400), ("0.5h", 1800),
    (" 2h ", 7200),
])
def test_token_lifetimes(text: str, seconds: int) -> None:
    assert parse_lifetime(text) == seconds


@pytest.mark.parametrize(("text", "why"), [
    ("9m", "outside 10m..24h"), ("599", "outside 10m..24h"), ("25h", "outside 10m..24h"), ("0", "outside"),
    ("1d", "not a duration"), ("twelve hours", "not a duration"), ("", "not a duration"), ("-1h", "not a duration"),
    ("600.5s", "whole number"),
])
def test_bad_token_lifetimes_say_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_lifetime(text)


def test_the_renewal_fraction_is_between_zero_and_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_renew_fraction(0.5) == 0.5
    for bad in (0.0, 1.0, -0.1, 2.0):
        with pytest.raises(ValueError, match="between 0 and 1"):
            check_renew_fraction(bad)
    monkeypatch.delenv("INTERCONNECT_TOKEN_RENEW_FRACTION", raising=False)
    assert Settings.from_env().token_renew_fraction == 0.5
    monkeypatch.setenv("INTERCONNECT_TOKEN_RENEW_FRACTION", "0.02")
    assert Settings.from_env().token_renew_fraction == 0.02
    monkeypatch.setenv("INTERCONNECT_TOKEN_RENEW_FRACTION", "1.5")
    with pytest.raises(ValueError, match=r"INTERCONNECT_TOKEN_RENEW_FRACTION='1\.5'"):
        Settings.from_env()


def kubeconfig(user: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config", "current-context": "gz",
            "clusters": [{"name": "gz", "cluster": {"server": "https://member:6443",
                                                    "certificate-authority-data": "Q0E="}}],
            "users": [{"name": "other", "user": {"token": "not-this-one"}}, {"name": "gz-hub", "user": user}],
            "contexts": [{"name": "gz", "context": {"cluster": "gz", "user": "gz-hub", "namespace": "jobs"}}]}


def test_only_an_inline_token_of_the_current_user_is_renewable() -> None:
    assert kubeconfig_token(kubeconfig({"token": "t1"})) == "t1"
    assert kubeconfig_token(kubeconfig({"client-certificate-data": "x", "client-key-data": "y"})) is None
    assert kubeconfig_token(kubeconfig({"token": "t1", "client-certificate-data": "x"})) is None
    assert kubeconfig_token(kubeconfig({"tokenFile": "/var/run/token"})) is None
    assert kubeconfig_token(kubeconfig({"exec": {"command": "aws"}})) is None
    assert kubeconfig_token({**kubeconfig({"token": "t1"}), "current-context": "missing"}) is None
    assert kubeconfig_token({}) is None


def test_a_new_token_replaces_the_current_users_only_in_a_copy() -> None:
    original = kubeconfig({"token": "t1"})
    renewed = with_token(original, "t2")
    assert kubeconfig_token(renewed) == "t2" and kubeconfig_token(original) == "t1"
    assert renewed["users"][0]["user"] == {"token": "not-this-one"}
    assert renewed["clusters"] == original["clusters"] and renewed["contexts"] == original["contexts"]
    with pytest.raises(ValueError, match="no token"):
        with_token(kubeconfig({"client-certificate-data": "x"}), "t2")


def test_the_expired_message_says_how_to_rejoin_and_never_quotes_the_token() -> None:
    raw = jwt(claims(lifetime=600))
    token = decode_token(raw)
    late = expired_message(token, IAT + 601)
    at = datetime.fromtimestamp(IAT + 600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"system:serviceaccount:interconnect-hub:interconnect-hub expired at {at}" in late
    refused = expired_message(token, IAT + 10)
    assert "401" in refused and "revoked" in refused
    for message in (late, refused, expired_message(None, IAT)):
        assert REJOIN in message and raw not in message
        assert "kubectl compute join --member-context <ctx> --hub-context <hub> --values <file>" in message
    assert CREDENTIALS_EXPIRED == "CredentialsExpired"


# ---------------------------------------------------------------- the renewal's order of work


class FakeHub:
    """The two Secret calls of the hub adapter, on one kubeconfig Secret."""

    def __init__(self, text: str) -> None:
        self.text, self.version, self.calls = text, 1, list[str]()
        self.fail_write = False

    async def read_secret_version(self, namespace: str, name: str, key: str) -> tuple[str, str]:
        self.calls.append("read")
        return self.text, str(self.version)

    async def write_secret_key(self, namespace: str, name: str, key: str, value: str, resource_version: str) -> None:
        self.calls.append("write")
        if self.fail_write:
            raise PermissionError("403 Forbidden")
        assert resource_version == str(self.version)
        self.text, self.version = value, self.version + 1


class FakeMember:
    """The member adapter's token calls: TokenRequest and the swap into the live client."""

    def __init__(self, config: dict[str, Any], hub: FakeHub) -> None:
        self.kubeconfig, self.hub, self.requests = config, hub, list[tuple[ServiceAccountToken, int]]()
        self.issue_at = IAT

    @property
    def token(self) -> ServiceAccountToken | None:
        token = kubeconfig_token(self.kubeconfig)
        return decode_token(token) if token else None

    async def request_token(self, current: ServiceAccountToken, lifetime: int) -> str:
        self.requests.append((current, lifetime))
        self.hub.calls.append("request")
        return jwt(claims(lifetime=lifetime, iat=self.issue_at))

    def use_token(self, token: str) -> dict[str, Any]:
        self.hub.calls.append("use")
        self.kubeconfig = with_token(self.kubeconfig, token)
        return self.kubeconfig


def setup(lifetime: int = 600) -> tuple[FakeHub, FakeMember, list[float]]:
    config = kubeconfig({"token": jwt(claims(lifetime=lifetime))})
    hub = FakeHub(yaml.safe_dump(config))
    return hub, FakeMember(config, hub), [float(IAT)]


SECRET = ("interconnect-system", "gz-kubeconfig", "kubeconfig")


async def test_a_due_token_is_stored_on_the_hub_before_the_member_client_uses_it() -> None:
    hub, member, clock = setup()
    renewer = CredentialRenewer(hub, 0.5, clock=lambda: clock[0])  # type: ignore[arg-type]
    clock[0] = IAT + 299
    assert await renewer.renew_if_due("gz", member, SECRET) is Renewal.NOT_DUE  # type: ignore[arg-type]
    assert hub.calls == []
    clock[0] = IAT + 300
    member.issue_at = IAT + 300
    old = member.token
    assert await renewer.renew_if_due("gz", member, SECRET) is Renewal.RENEWED  # type: ignore[arg-type]
    assert hub.calls == ["read", "request", "write", "use"]
    [(asked_with, lifetime)] = member.requests
    assert asked_with == old and lifetime == 600, "same account, binding and lifetime"
    stored = yaml.safe_load(hub.text)
    assert stored == member.kubeconfig and decode_token(kubeconfig_token(stored) or "") != old
    new = member.token
    assert new is not None and old is not None
    assert new.issued_at == IAT + 300 and new.secret == old.secret and new.subject == old.subject
    assert await renewer.renew_if_due("gz", member, SECRET) is Renewal.NOT_DUE  # type: ignore[arg-type]


async def test_a_failed_write_keeps_the_current_token_and_is_retried_later() -> None:
    hub, member, clock = setup()
    renewer = CredentialRenewer(hub, 0.5, clock=lambda: clock[0])  # type: ignore[arg-type]
    before = dict(member.kubeconfig)
    hub.fail_write = True
    clock[0] = IAT + 300
    with pytest.raises(PermissionError):
        await renewer.renew_if_due("gz", member, SECRET)  # type: ignore[arg-type]
    assert member.kubeconfig == before and "use" not in hub.calls
    clock[0] = IAT + 310
    assert await renewer.renew_if_due("gz", member, SECRET) is Renewal.NOT_DUE, "waits before trying again"  # type: ignore[arg-type]
    hub.fail_write = False
    clock[0] = IAT + 331
    assert await renewer.renew_if_due("gz", member, SECRET) is Renewal.RENEWED  # type: ignore[arg-type]


async def test_a_rejoin_meanwhile_wins_and_certificates_are_not_renewed() -> None:
    hub, member, clock = setup()
    renewer = CredentialRenewer(hub, 0.5, clock=lambda: clock[0])  # type: ignore[arg-type]
    hub.text = yaml.safe_dump(with_token(member.kubeconfig, jwt(claims(iat=IAT + 200))))  # join wrote a new one
    clock[0] = IAT + 300
    assert await renewer.renew_if_due("gz", member, SECRET) is Renewal.SUPERSEDED  # type: ignore[arg-type]
    assert hub.calls == ["read"] and member.requests == []
    certs = FakeMember(kubeconfig({"client-certificate-data": "x", "client-key-data": "y"}), hub)
    assert await renewer.renew_if_due("gz", certs, SECRET) is Renewal.NOT_RENEWABLE  # type: ignore[arg-type]


async def test_the_live_member_client_sends_the_renewed_token_from_then_on() -> None:
    """The swap on the real client (kubernetes_asyncio reads the header per request); no request is made."""
    from interconnect.adapters.member import MemberCluster

    old, new = jwt(claims()), jwt(claims(iat=IAT + 100))
    config = kubeconfig({"token": old})
    del config["clusters"][0]["cluster"]["certificate-authority-data"]  # the system's CAs: none needed here
    member = await MemberCluster.connect("gz", yaml.safe_dump(config), "jobs", lambda *_: None)
    try:
        assert member.token == decode_token(old)
        assert (await member.api.configuration.auth_settings())["BearerToken"]["value"] == f"Bearer {old}"
        member.use_token(new)
        assert (await member.api.configuration.auth_settings())["BearerToken"]["value"] == f"Bearer {new}"
        assert member.token == decode_token(new) and kubeconfig_token(member.kubeconfig) == new
        assert member.same_kubeconfig(yaml.safe_dump(member.kubeconfig))
        assert not member.same_kubeconfig(yaml.safe_dump(config))
        assert not member.same_kubeconfig("clusters: [")
    finally:
        await member.close()
