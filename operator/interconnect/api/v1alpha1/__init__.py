"""interconnect.dev/v1alpha1: ComputeNode, ComputeOffer, ComputeJob, ComputeQuota, ComputeUsage and
AcceleratorModel.

kube-custom-resource reads the version from this package's name.
"""

from .accelerator import AcceleratorModel, AcceleratorModelSpec
from .common import (
    Condition,
    MonetaryAmount,
    Price,
    Resource,
    find_condition,
    is_condition_true,
    set_condition,
    shared_fields_set,
    shared_strings,
    to_api,
    validation_message,
)
from .job import ComputeJob, ComputeJobSpec, ComputeJobStatus
from .node import ComputeNode, ComputeNodeSpec, ComputeNodeStatus
from .offer import ComputeOffer, ComputeOfferSpec, ComputeOfferStatus
from .quota import ComputeQuota, ComputeQuotaSpec, ComputeQuotaStatus
from .usage import ComputeUsage, ComputeUsageSpec

#: The kinds of this version, in the order the CRDs are written.
KINDS: tuple[type[Resource], ...] = (
    ComputeNode, ComputeOffer, ComputeJob, ComputeQuota, ComputeUsage, AcceleratorModel
)

__all__ = [
    "KINDS",
    "AcceleratorModel",
    "AcceleratorModelSpec",
    "ComputeJob",
    "ComputeJobSpec",
    "ComputeJobStatus",
    "ComputeNode",
    "ComputeNodeSpec",
    "ComputeNodeStatus",
    "ComputeOffer",
    "ComputeOfferSpec",
    "ComputeOfferStatus",
    "ComputeQuota",
    "ComputeQuotaSpec",
    "ComputeQuotaStatus",
    "ComputeUsage",
    "ComputeUsageSpec",
    "Condition",
    "MonetaryAmount",
    "Price",
    "Resource",
    "find_condition",
    "is_condition_true",
    "set_condition",
    "shared_fields_set",
    "shared_strings",
    "to_api",
    "validation_message",
]
