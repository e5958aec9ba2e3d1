"""Starting kopf: the one place that knows how the operator process is wired."""

from __future__ import annotations

import asyncio
import logging
import os

import kopf


def run_operator(
    *,
    kubeconfig: str | None,
    context: str | None,
    standalone: bool,
    priority: int | None,
    liveness: str | None,
    verbose: bool,
) -> int:
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
    if context:
        os.environ["INTERCONNECT_HUB_CONTEXT"] = context
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import interconnect.handlers  # noqa: F401  (registers the handlers with kopf)

    asyncio.run(
        kopf.operator(
            clusterwide=True,
            standalone=standalone,
            priority=priority if priority is not None else 0,
            peering_name="interconnect",
            liveness_endpoint=liveness,
        )
    )
    return 0
