"""Renewing the hub's token for a member before it expires.

``join`` leaves a kubeconfig with a bound service-account token on the hub (a Secret in the
operator's namespace). Once ``fraction`` of its lifetime has passed, the operator asks the
member for the next one with the token itself (same service account, same binding Secret, same
lifetime), writes it into that Secret (guarded by resourceVersion: a re-join meanwhile wins),
and only then swaps it into the live member client. A failed renewal changes nothing and is
tried again a little later; the current token keeps working until it expires. Kubeconfigs
with client certificates or a static token are not renewed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from enum import Enum

import yaml

from interconnect.adapters.hub import Hub
from interconnect.adapters.member import MemberCluster
from interconnect.core.credentials import (
    DEFAULT_RENEW_FRACTION,
    check_renew_fraction,
    kubeconfig_token,
    renew_due,
    renewal_lifetime,
    with_token,
)

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0
"""After a failed renewal, the next try waits this long (at most until the token's expiry)."""


class Renewal(Enum):
    NOT_RENEWABLE = "not-renewable"
    """Client certificates, a static token: nothing to renew."""
    NOT_DUE = "not-due"
    RENEWED = "renewed"
    SUPERSEDED = "superseded"
    """The Secret holds another token than the one in use (a re-join): reconnect with it."""


class CredentialRenewer:
    """Renews members' tokens; one per controller. ``clock`` is wall time (tokens' ``exp``)."""

    def __init__(self, hub: Hub, fraction: float = DEFAULT_RENEW_FRACTION,
                 clock: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self.fraction = check_renew_fraction(fraction)
        self.clock = clock
        self._retry_at: dict[str, float] = {}

    def forget(self, node: str) -> None:
        self._retry_at.pop(node, None)

    async def renew_if_due(self, node: str, member: MemberCluster, secret: tuple[str, str, str]) -> Renewal:
        """Renew ``member``'s token if it is due; ``secret`` is the (namespace, name, key) of the
        kubeconfig on the hub. Raises on failure (the caller counts it; the token still works)."""
        current = member.token
        if current is None:
            return Renewal.NOT_RENEWABLE
        now = self.clock()
        if not renew_due(current, now, self.fraction) or now < self._retry_at.get(node, 0.0):
            return Renewal.NOT_DUE
        self._retry_at[node] = min(now + RETRY_SECONDS, float(current.expires_at))
        namespace, name, key = secret
        stored, version = await self.hub.read_secret_version(namespace, name, key)
        if kubeconfig_token(yaml.safe_load(stored) or {}) != kubeconfig_token(member.kubeconfig):
            return Renewal.SUPERSEDED
        token = await member.request_token(current, renewal_lifetime(current))
        await self.hub.write_secret_key(namespace, name, key, yaml.safe_dump(with_token(member.kubeconfig, token)),
                                        version)
        member.use_token(token)
        self._retry_at.pop(node, None)
        renewed = member.token
        if renewed is not None:
            expires = dt.datetime.fromtimestamp(renewed.expires_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            log.info("renewed the hub's token for %s (%s, bound to Secret %s): valid until %s", node,
                     renewed.subject, renewed.secret or "none", expires)
        return Renewal.RENEWED
