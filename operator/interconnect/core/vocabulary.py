"""Words every layer shares: node types, latency tiers, billing units, job phases.

They live in the core so that the API models, placement and metering speak one language.
"""

from __future__ import annotations

import enum

GROUP = "interconnect.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"


class NodeType(enum.StrEnum):
    """A member is a regional node (one per province) or an industry node."""

    REGIONAL = "regional"
    INDUSTRY = "industry"


class LatencyTier(enum.StrEnum):
    """Latency sold in tiers: same city, same region (and neighbours), national."""

    MS1 = "1ms"
    MS5 = "5ms"
    MS20 = "20ms"

    @property
    def bound_ms(self) -> float:
        """The round trip, in milliseconds, that this tier promises not to exceed."""
        return float(self.value.removesuffix("ms"))

    @classmethod
    def ordered(cls) -> tuple[LatencyTier, ...]:
        """Tightest first."""
        return (cls.MS1, cls.MS5, cls.MS20)


class BillingUnit(enum.StrEnum):
    CARD_HOUR = "card-hour"
    MACHINE_HOUR = "machine-hour"


class JobPhase(enum.StrEnum):
    PENDING = "Pending"
    SCHEDULED = "Scheduled"
    DISPATCHED = "Dispatched"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobPhase.SUCCEEDED, JobPhase.FAILED, JobPhase.CANCELLED)


ACTIVE_PHASES = frozenset({JobPhase.SCHEDULED, JobPhase.DISPATCHED, JobPhase.RUNNING})
"""Phases in which a job holds its cards (placed, not finished)."""
FINALIZER = "interconnect.dev/finalizer"
"""kopf's finalizer on ComputeNodes (and, from earlier versions, on ComputeJobs)."""


class Industry(enum.StrEnum):
    """Industries an industry node may serve (the programme's N)."""

    FINANCE = "finance"
    MANUFACTURING = "manufacturing"
    HEALTHCARE = "healthcare"
    ENERGY = "energy"
    TRANSPORT = "transport"
    EDUCATION = "education"
    GOVERNMENT = "government"
    TELECOM = "telecom"
    RESEARCH = "research"
    MEDIA = "media"
