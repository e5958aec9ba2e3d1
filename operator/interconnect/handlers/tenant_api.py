"""Start the tenant API (services/tenant_api.py) with the operator, stop it on cleanup.

Every replica serves it, the standby too: it reads the member through the active controller's
client when this replica has one (`active_controller`, set by handlers/runtime.py), else
through a client made per request from the node's kubeconfig Secret.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from interconnect.adapters import hub as hub_adapter
from interconnect.handlers.runtime import active_controller
from interconnect.services.tenant_api import TenantApi, TenantApiSettings

log = logging.getLogger(__name__)


@kopf.on.startup()
async def start_tenant_api(memo: kopf.Memo, **_: Any) -> None:
    settings = TenantApiSettings.from_env()
    if settings is None or memo.get("tenant_api") is not None:
        return
    api = await hub_adapter.connect()
    server = TenantApi(api, settings, controller=lambda: active_controller(memo))
    try:
        await server.start()
    except Exception as exc:
        await server.stop()
        await api.close()
        # The hub may still be starting; a missing front-proxy CA stays missing: say so, retry slowly.
        raise kopf.TemporaryError(f"cannot start the tenant API: {exc}", delay=10) from exc
    memo["tenant_api"] = server


@kopf.on.cleanup()
async def stop_tenant_api(memo: kopf.Memo, **_: Any) -> None:
    server: TenantApi | None = memo.get("tenant_api")
    memo["tenant_api"] = None
    if server is not None:
        await server.stop()
        await server.api.close()
