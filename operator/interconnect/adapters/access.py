"""Who is asking, and may they: the hub's answers for the tenant API.

- `front_proxy_config` reads how the hub's API server identifies itself when it forwards a request
  to an aggregated API (``kube-system/extension-apiserver-authentication``, the ConfigMap every
  aggregated server reads, metrics-server included): the CA of its front-proxy client
  certificate, the names that certificate may carry, and the headers that carry the user.
- `may` asks the hub's authorizer (a SubjectAccessReview) whether that user may do something.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

AUTH_CONFIG_MAP = ("kube-system", "extension-apiserver-authentication")


@dataclass(frozen=True)
class FrontProxyConfig:
    """The requestheader settings of the hub's API server (its ``--requestheader-*`` flags)."""

    client_ca: str
    """PEM of the CA that signs the front-proxy client certificate; empty: not configured."""
    allowed_names: tuple[str, ...] = ()
    """Common names the front-proxy certificate may have; empty: any the CA signed."""
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    uid_headers: tuple[str, ...] = ("X-Remote-Uid",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_prefixes: tuple[str, ...] = ("X-Remote-Extra-",)


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _names(data: Mapping[str, str], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = data.get(key)
    if not raw:
        return default
    try:
        value = json.loads(raw)
    except ValueError:
        return default
    return tuple(str(v) for v in value) if isinstance(value, list) and value else default


def parse_front_proxy_config(data: Mapping[str, str]) -> FrontProxyConfig:
    """The ConfigMap's data as the API server writes it (lists are JSON arrays)."""
    defaults = FrontProxyConfig("")
    return FrontProxyConfig(
        client_ca=data.get("requestheader-client-ca-file", ""),
        allowed_names=_names(data, "requestheader-allowed-names", ()),
        username_headers=_names(data, "requestheader-username-headers", defaults.username_headers),
        uid_headers=_names(data, "requestheader-uid-headers", defaults.uid_headers),
        group_headers=_names(data, "requestheader-group-headers", defaults.group_headers),
        extra_prefixes=_names(data, "requestheader-extra-headers-prefix", defaults.extra_prefixes),
    )


async def front_proxy_config(api: k8s.ApiClient) -> FrontProxyConfig:
    """The hub's requestheader settings (needs ``get`` on that ConfigMap: the built-in Role
    ``extension-apiserver-authentication-reader`` in kube-system grants it)."""
    namespace, name = AUTH_CONFIG_MAP
    cm = await k8s.CoreV1Api(api).read_namespaced_config_map(name, namespace, _request_timeout=15)
    return parse_front_proxy_config(dict(cm.data or {}))


def review_body(user: UserInfo, *, verb: str, group: str, resource: str, namespace: str,
                name: str = "", subresource: str = "") -> dict[str, Any]:
    attributes = {"namespace": namespace, "verb": verb, "group": group, "resource": resource}
    if name:
        attributes["name"] = name
    if subresource:
        attributes["subresource"] = subresource
    spec: dict[str, Any] = {"user": user.name, "groups": list(user.groups), "resourceAttributes": attributes}
    if user.uid:
        spec["uid"] = user.uid
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in user.extra.items()}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


async def may(api: k8s.ApiClient, user: UserInfo, *, verb: str, group: str, resource: str, namespace: str,
              name: str = "", subresource: str = "") -> tuple[bool, str]:
    """Whether ``user`` may do it, by the hub's own authorizer, and its reason. Needs ``create
    subjectaccessreviews`` (the built-in ClusterRole ``system:auth-delegator``)."""
    body = review_body(user, verb=verb, group=group, resource=resource, namespace=namespace, name=name,
                       subresource=subresource)
    review: Any = await k8s.AuthorizationV1Api(api).create_subject_access_review(
        body,  # type: ignore[arg-type]  # dicts are sent as-is
        _preload_content=False, _request_timeout=15)
    try:
        raw = await review.read()
    finally:
        review.release()
    if not 200 <= review.status <= 299:
        error = ApiException(status=review.status, reason=str(review.reason or ""))
        error.body = raw[:4096].decode(errors="replace")
        raise error
    status = json.loads(raw).get("status") or {}
    return bool(status.get("allowed")) and not status.get("denied"), str(status.get("reason") or "")


def user_from_headers(headers: Iterable[tuple[str, str]], config: FrontProxyConfig) -> UserInfo | None:
    """The user the front proxy forwarded (as the generic API server's requestheader
    authenticator reads it): the first non-empty username header, every value of the group
    headers, extras from the prefixed headers (key lower-cased and percent-decoded). None when no
    username header is set. Only call it for a connection whose client certificate was verified."""
    pairs = [(k.lower(), v) for k, v in headers]

    def values(names: Sequence[str]) -> list[str]:
        wanted = [n.lower() for n in names]
        return [v for n in wanted for k, v in pairs if k == n]

    name = next((v for v in values(config.username_headers) if v), "")
    if not name:
        return None
    uid = next((v for v in values(config.uid_headers) if v), "")
    groups = tuple(values(config.group_headers))
    extra: dict[str, list[str]] = {}
    for prefix in (p.lower() for p in config.extra_prefixes):
        for k, v in pairs:
            if k.startswith(prefix) and len(k) > len(prefix):
                extra.setdefault(unquote(k[len(prefix):]).lower(), []).append(v)
    return UserInfo(name=name, uid=uid, groups=groups, extra={k: tuple(v) for k, v in extra.items()})


def common_name(peercert: Mapping[str, Any] | None) -> str | None:
    """The CN of a certificate as ``ssl`` reports a verified peer (None: no certificate)."""
    if not peercert:
        return None
    for rdn in peercert.get("subject") or ():
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""
