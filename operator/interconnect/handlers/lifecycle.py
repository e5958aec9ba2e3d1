"""Operator start-up: settings and the login that every other handler relies on."""

from __future__ import annotations

import os
from typing import Any

import kopf

FINALIZER = "interconnect.dev/finalizer"


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """Log in to the hub: in-cluster, or the kubeconfig context named by ``--context``."""
    context = os.environ.get("INTERCONNECT_HUB_CONTEXT")
    if not context:
        return kopf.login_via_client(**kwargs)
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(context=context, client_configuration=cfg)  # type: ignore[no-untyped-call]
    token = (cfg.api_key or {}).get("authorization", "")
    scheme, _, value = token.partition(" ")
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        scheme=scheme or None,
        token=value or None,
        username=cfg.username or None,
        password=cfg.password or None,
    )


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="interconnect.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="interconnect.dev", key="last-handled-configuration")
    settings.posting.level = 20  # INFO and above become Kubernetes events
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
