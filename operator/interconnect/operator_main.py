"""Starting kopf: the one place that knows how the operator process is wired."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket

import kopf

from interconnect.services.config import IDENTITY_ENV, PEERING_ENV, PRIORITY_ENV

PEERING_NAME = "interconnect"


def replica_priority(pod_name: str) -> int:
    """A priority of its own for each replica (kopf freezes replicas that share one).

    Derived from the pod's name, so it is stable across restarts of the same pod and differs
    between the replicas of a Deployment.
    """
    return int(hashlib.sha256(pod_name.encode()).hexdigest(), 16) % 1_000_000_000


def run_operator(
    *,
    standalone: bool,
    priority: int | None,
    liveness: str | None,
    verbose: bool,
) -> int:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("kubernetes_asyncio", "aiohttp", "asyncio", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.INFO)
    import interconnect.handlers  # noqa: F401  (registers the handlers with kopf)

    # kopf pauses every watch until its peering CRD exists unless it runs standalone; peering
    # (several replicas, one active) needs ClusterKopfPeering installed by the hub chart.
    if priority is None:
        priority = replica_priority(os.environ.get("HOSTNAME", ""))
    # kopf names this replica in the peering object after POD_ID; the controller's own loops
    # read the same object to stay on standby exactly when kopf's handlers do.
    os.environ.setdefault(IDENTITY_ENV, f"{socket.gethostname()}/{os.getpid()}")
    os.environ[PEERING_ENV] = "" if standalone else PEERING_NAME
    os.environ[PRIORITY_ENV] = str(priority)
    if standalone:
        coro = kopf.operator(clusterwide=True, standalone=True, liveness_endpoint=liveness or None)
    else:
        coro = kopf.operator(clusterwide=True, peering_name=PEERING_NAME, priority=priority,
                             liveness_endpoint=liveness or None)
    asyncio.run(coro)
    return 0
