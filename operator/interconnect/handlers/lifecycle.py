"""Operator start-up: settings that every other handler relies on."""

from __future__ import annotations

import os
from typing import Any

import kopf

from interconnect.core.vocabulary import FINALIZER


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="interconnect.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="interconnect.dev", key="last-handled-configuration")
    settings.posting.level = 20  # INFO and above become Kubernetes events
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # How long a standby waits for a replica that stopped renewing (kill -9, node loss).
    settings.peering.lifetime = int(os.environ.get("INTERCONNECT_PEERING_LIFETIME_SECONDS", "20"))
