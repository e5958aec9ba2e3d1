"""The hub's credential for a member: a short-lived, bound service-account token.

``join`` asks the member's API server (TokenRequest) for a token of the hub's service account,
bound to an Opaque "binding" Secret in the member's hub namespace and valid for a limited time;
the operator renews it before it expires, with the token itself; ``leave`` deletes the binding
Secret, which invalidates every token bound to it. This module is the pure part: what a token
says about itself (its JWT payload, read WITHOUT verifying the signature: the member's API server
verifies it, the hub only needs to know when and how to renew), when to renew, and the kubeconfig
edits. Nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MIN_LIFETIME_SECONDS = 600
"""The API server refuses a TokenRequest for less (spec.expirationSeconds >= 600)."""
MAX_LIFETIME_SECONDS = 24 * 3600
DEFAULT_LIFETIME_SECONDS = 12 * 3600
DEFAULT_RENEW_FRACTION = 0.5
"""Renew once half the token's lifetime has passed: a failed renewal has the other half to succeed."""
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
CREDENTIALS_EXPIRED = "CredentialsExpired"
"""The ComputeNode's Ready reason when the member refuses the hub's token (or it has expired)."""
REJOIN = "kubectl compute join --member-context <ctx> --hub-context <hub> --values <file>"


@dataclass(frozen=True, slots=True)
class ServiceAccountToken:
    """What a service-account token's payload says; nothing in it is verified."""

    namespace: str
    service_account: str
    issued_at: int
    """``iat``, seconds since the epoch."""
    expires_at: int
    """``exp``, seconds since the epoch."""
    secret: str | None = None
    """The Secret the token is bound to (``kubernetes.io.secret.name``), if any."""
    secret_uid: str | None = None

    @property
    def subject(self) -> str:
        return f"{SERVICE_ACCOUNT_PREFIX}{self.namespace}:{self.service_account}"

    @property
    def lifetime(self) -> int:
        """Seconds from issue to expiry: what a renewal asks for again."""
        return self.expires_at - self.issued_at


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode_token(token: str) -> ServiceAccountToken | None:
    """The claims of a service-account JWT, or None for anything else (a static or legacy token
    without ``exp``, a token of a user, not a JWT at all). The signature is not checked."""
    parts = token.strip().split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return None
    try:
        payload = json.loads(_b64url(parts[1]))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    sub, exp, iat = payload.get("sub"), payload.get("exp"), payload.get("iat")
    if not isinstance(sub, str) or not sub.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    if not isinstance(exp, int) or isinstance(exp, bool) or not isinstance(iat, int) or isinstance(iat, bool):
        return None
    namespace, _, name = sub.removeprefix(SERVICE_ACCOUNT_PREFIX).partition(":")
    if not namespace or not name or ":" in name or exp <= iat:
        return None
    claims = payload.get("kubernetes.io")
    secret = claims.get("secret") if isinstance(claims, dict) else None
    secret_name = secret.get("name") if isinstance(secret, dict) else None
    secret_uid = secret.get("uid") if isinstance(secret, dict) else None
    return ServiceAccountToken(
        namespace=namespace, service_account=name, issued_at=iat, expires_at=exp,
        secret=secret_name if isinstance(secret_name, str) and secret_name else None,
        secret_uid=secret_uid if isinstance(secret_uid, str) and secret_uid else None)


def renew_at(token: ServiceAccountToken, fraction: float = DEFAULT_RENEW_FRACTION) -> float:
    """When ``fraction`` of the token's lifetime has passed (seconds since the epoch)."""
    return token.issued_at + fraction * token.lifetime


def renew_due(token: ServiceAccountToken, now: float, fraction: float = DEFAULT_RENEW_FRACTION) -> bool:
    """Renew once at least ``fraction`` of the lifetime has passed (and it has not expired yet:
    an expired token cannot ask for its successor)."""
    return renew_at(token, fraction) <= now < token.expires_at


def expired(token: ServiceAccountToken, now: float) -> bool:
    return now >= token.expires_at


def renewal_lifetime(token: ServiceAccountToken) -> int:
    """The lifetime a renewal asks for: the current token's, within what the API server allows."""
    return max(MIN_LIFETIME_SECONDS, min(MAX_LIFETIME_SECONDS, token.lifetime))


def check_renew_fraction(value: float) -> float:
    if not 0 < value < 1:
        raise ValueError(f"the token renewal fraction must be between 0 and 1 (exclusive), not {value}")
    return value


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")


def parse_lifetime(text: str) -> int:
    """A token lifetime: seconds (``3600``) or a Go-style duration (``12h``, ``90m``, ``1h30m``,
    ``600s``), between 10 minutes and 24 hours."""
    value = text.strip()
    if re.fullmatch(r"\d+", value):
        seconds = float(value)
    elif value and _DURATION.sub("", value) == "":
        unit = {"h": 3600, "m": 60, "s": 1}
        seconds = sum(float(n) * unit[u] for n, u in _DURATION.findall(value))
    else:
        raise ValueError(f"{text!r} is not a duration (e.g. 12h, 90m, 600s or a number of seconds)")
    if seconds != int(seconds):
        raise ValueError(f"{text!r} is not a whole number of seconds")
    if not MIN_LIFETIME_SECONDS <= seconds <= MAX_LIFETIME_SECONDS:
        raise ValueError(f"{text!r} is outside 10m..24h: the API server issues tokens for at least "
                         f"{MIN_LIFETIME_SECONDS}s, and the hub's credential must not live longer than a day")
    return int(seconds)


def _current_user(config: Mapping[str, Any]) -> dict[str, Any] | None:
    contexts = {c.get("name"): c.get("context") or {} for c in config.get("contexts") or [] if isinstance(c, dict)}
    name = config.get("current-context") or (next(iter(contexts)) if len(contexts) == 1 else None)
    context = contexts.get(name)
    if not context:
        return None
    users = {u.get("name"): u.get("user") for u in config.get("users") or [] if isinstance(u, dict)}
    user = users.get(context.get("user"))
    return user if isinstance(user, dict) else None


def kubeconfig_token(config: Mapping[str, Any]) -> str | None:
    """The bearer token of the kubeconfig's current user; None when it authenticates otherwise
    (client certificates, an exec plugin, a token file): only an inline token can be renewed."""
    user = _current_user(config)
    if user is None or any(k in user for k in ("client-certificate", "client-certificate-data", "exec",
                                                "auth-provider", "tokenFile")):
        return None
    token = user.get("token")
    return token if isinstance(token, str) and token else None


def with_token(config: Mapping[str, Any], token: str) -> dict[str, Any]:
    """A copy of the kubeconfig whose current user holds ``token`` instead."""
    copied: dict[str, Any] = copy.deepcopy(dict(config))
    user = _current_user(copied)
    if user is None or kubeconfig_token(copied) is None:
        raise ValueError("the kubeconfig's current user has no token to replace")
    user["token"] = token
    return copied


def expired_message(token: ServiceAccountToken | None, now: float) -> str:
    """The Ready=False message of a node whose member refuses the hub's token: what happened and
    what the node operator does about it (never the token itself)."""
    if token is not None and expired(token, now):
        at = datetime.fromtimestamp(token.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        what = f"the hub's token for {token.subject} expired at {at} and was not renewed in time"
    else:
        what = "the member refused the hub's token (401 Unauthorized: revoked, expired or never valid)"
    return f"{what}; the node operator re-joins the member to issue a new one: {REJOIN}"
