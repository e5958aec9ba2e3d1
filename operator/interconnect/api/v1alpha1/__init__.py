"""interconnect.dev/v1alpha1: ComputeNode, ComputeOffer and ComputeJob.

kube-custom-resource reads the version from this package's name.
"""

from .common import (
    Condition,
    MonetaryAmount,
    Price,
    Resource,
    find_condition,
    is_condition_true,
    set_condition,
    to_api,
)
from .job import ComputeJob, ComputeJobSpec, ComputeJobStatus
from .node import ComputeNode, ComputeNodeSpec, ComputeNodeStatus
from .offer import ComputeOffer, ComputeOfferSpec, ComputeOfferStatus

#: The kinds of this version, in the order the CRDs are written.
KINDS: tuple[type[Resource], ...] = (ComputeNode, ComputeOffer, ComputeJob)

__all__ = [
    "KINDS",
    "ComputeJob",
    "ComputeJobSpec",
    "ComputeJobStatus",
    "ComputeNode",
    "ComputeNodeSpec",
    "ComputeNodeStatus",
    "ComputeOffer",
    "ComputeOfferSpec",
    "ComputeOfferStatus",
    "Condition",
    "MonetaryAmount",
    "Price",
    "Resource",
    "find_condition",
    "is_condition_true",
    "set_condition",
    "to_api",
]
