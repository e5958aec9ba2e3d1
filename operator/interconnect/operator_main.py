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


LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _name_as_logger(record: logging.LogRecord) -> bool:
    """The logger's name as a field of its own in JSON lines (kopf's formatter leaves it out)."""
    record.__dict__["logger"] = record.name
    return True


def configure_logging(*, log_format: str = "text", verbose: bool = False) -> None:
    """The root logger: one line of text per record, or one JSON object per line (``json``).

    JSON is kopf's own formatter (``kopf.configure(log_format=kopf.LogFormat.JSON)``): the
    message, ``timestamp``, ``severity``, the logger's name, any ``extra`` fields, and for
    messages about an object its reference under ``object`` (apiVersion, kind, namespace, name,
    uid), which log collectors (Loki, Elasticsearch, Cloud Logging) index without a parser.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: expected one of {', '.join(LOG_FORMATS)}")
    level = logging.DEBUG if verbose else logging.INFO
    if log_format == "json":
        root = logging.getLogger()
        root.handlers[:] = [h for h in root.handlers if type(h) is not logging.StreamHandler]
        kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON, log_refkey="object")
        for handler in root.handlers:
            handler.addFilter(_name_as_logger)
    else:
        logging.basicConfig(level=level, format=TEXT_FORMAT)
    logging.getLogger().setLevel(level)
    for noisy in ("kubernetes_asyncio", "aiohttp", "asyncio", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.INFO)


def run_operator(
    *,
    standalone: bool,
    priority: int | None,
    liveness: str | None,
    verbose: bool,
    log_format: str = "text",
) -> int:
    configure_logging(log_format=log_format, verbose=verbose)
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
