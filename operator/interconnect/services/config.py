"""Operator configuration, from the environment (the hub chart sets these)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from interconnect.core.credentials import DEFAULT_RENEW_FRACTION, check_renew_fraction
from interconnect.core.latency import LATENCY_CONFIG_MAP

PEERING_ENV = "INTERCONNECT_PEERING"
"""The ClusterKopfPeering the replica takes part in; empty when it runs standalone (set by `run`)."""
PRIORITY_ENV = "INTERCONNECT_PEERING_PRIORITY"
IDENTITY_ENV = "POD_ID"
"""kopf's name for this replica in the peering object."""


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        parsed = float(value)
    except ValueError as exc:
        raise ValueError(f"{name}={value!r}: expected a number of seconds") from exc
    if parsed <= 0:
        raise ValueError(f"{name}={value!r}: must be positive")
    return parsed


def _fraction(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return check_renew_fraction(float(value))
    except ValueError as exc:
        raise ValueError(f"{name}={value!r}: {exc}") from None


DEFAULT_START_DEADLINE_SECONDS = 600.0
DEFAULT_MAX_TERMINATION_GRACE_SECONDS = 300
DEFAULT_LEASE_SECONDS = 15
GRID_FACTORS_CONFIG_MAP = "interconnect-grid-factors"
LEASE_IDENTITY_ENV = "INTERCONNECT_LEASE_IDENTITY"


@dataclass(frozen=True, slots=True)
class Settings:
    namespace: str
    """Where the operator keeps its own objects (identity registry, latency table)."""
    latency_config_map: str
    identity_config_map: str
    heartbeat_interval: float
    """Seconds between two pings of a member."""
    not_ready_after: float
    """A member whose API server has not answered for this long is Ready=False."""
    re_place_after: float
    """Default grace period before the jobs of a lost member are re-placed (or, with failurePolicy
    rePlace: Never, failed)."""
    metering_interval: float
    """Seconds between two accruals of running jobs' usage into status."""
    member_sync_timeout: float
    metrics_port: int
    peering: str = ""
    """kopf peering object's name; empty: standalone, always active."""
    priority: int = 0
    identity: str = ""
    token_renew_fraction: float = DEFAULT_RENEW_FRACTION
    """A member's token is renewed once this fraction of its lifetime has passed."""
    start_deadline: float = DEFAULT_START_DEADLINE_SECONDS
    """Default seconds from placement within which every pod of an attempt must have started
    (a job's spec.startDeadlineSeconds overrides it); past it the attempt ends and its cards go back."""
    max_termination_grace: int = DEFAULT_MAX_TERMINATION_GRACE_SECONDS
    """The longest terminationGracePeriodSeconds a dispatched pod gets (a pod keeps its cards that long)."""
    lease_identity: str = ""
    """This replica's name in the leader Lease: the pod's name, stable across container restarts,
    so a restarted replica takes its own Lease back at once."""
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    """The leader Lease's duration: how long a standby waits after the leader's last renewal."""
    grid_factors_config_map: str = GRID_FACTORS_CONFIG_MAP
    """The hub admin's grid emission factors (optional; the shipped table otherwise)."""

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            namespace=os.environ.get("INTERCONNECT_NAMESPACE")
            or os.environ.get("POD_NAMESPACE")
            or "interconnect-system",
            latency_config_map=os.environ.get("INTERCONNECT_LATENCY_CONFIGMAP", LATENCY_CONFIG_MAP),
            grid_factors_config_map=os.environ.get("INTERCONNECT_GRID_FACTORS_CONFIGMAP", GRID_FACTORS_CONFIG_MAP),
            identity_config_map=os.environ.get("INTERCONNECT_IDENTITY_CONFIGMAP", "interconnect-identities"),
            heartbeat_interval=_float("INTERCONNECT_HEARTBEAT_SECONDS", 5.0),
            not_ready_after=_float("INTERCONNECT_NOT_READY_AFTER_SECONDS", 30.0),
            re_place_after=_float("INTERCONNECT_RE_PLACE_AFTER_SECONDS", 120.0),
            metering_interval=_float("INTERCONNECT_METERING_INTERVAL_SECONDS", 15.0),
            member_sync_timeout=_float("INTERCONNECT_MEMBER_SYNC_TIMEOUT_SECONDS", 30.0),
            metrics_port=int(os.environ.get("INTERCONNECT_METRICS_PORT", "9090")),
            peering=os.environ.get(PEERING_ENV, ""),
            priority=int(os.environ.get(PRIORITY_ENV, "0")),
            identity=os.environ.get(IDENTITY_ENV, ""),
            token_renew_fraction=_fraction("INTERCONNECT_TOKEN_RENEW_FRACTION", DEFAULT_RENEW_FRACTION),
            start_deadline=_float("INTERCONNECT_START_DEADLINE_SECONDS", DEFAULT_START_DEADLINE_SECONDS),
            max_termination_grace=int(_float("INTERCONNECT_MAX_TERMINATION_GRACE_SECONDS",
                                             DEFAULT_MAX_TERMINATION_GRACE_SECONDS)),
            lease_identity=os.environ.get(LEASE_IDENTITY_ENV) or os.environ.get(IDENTITY_ENV, ""),
            lease_seconds=int(_float("INTERCONNECT_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)),
        )
