"""Starting kopf: the one place that knows how the operator process is wired."""

from __future__ import annotations

import asyncio
import logging

import kopf


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
    if standalone:
        coro = kopf.operator(clusterwide=True, standalone=True, liveness_endpoint=liveness or None)
    else:
        coro = kopf.operator(clusterwide=True, peering_name="interconnect", priority=priority or 0,
                             liveness_endpoint=liveness or None)
    asyncio.run(coro)
    return 0
