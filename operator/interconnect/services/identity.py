"""Unified identity: the hub issues each node one code, unique and never reused.

The issued codes live in a ConfigMap on the hub, written with optimistic concurrency, so two
replicas (or a restart) can never issue the same sequence twice, and a node deleted and
created again gets a new code: a code once issued belongs to one node UID forever.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random

from interconnect.adapters.hub import Conflict, Hub
from interconnect.core.identity import issue_identity_code, next_sequence
from interconnect.core.vocabulary import NodeType

log = logging.getLogger(__name__)
KEY = "registry.json"


class IdentityRegistry:
    def __init__(self, hub: Hub, namespace: str, name: str) -> None:
        self.hub = hub
        self.namespace = namespace
        self.name = name

    async def code_for(self, *, node: str, uid: str, node_type: NodeType, region: str) -> str:
        """The node's code: the one already issued to this UID, else a new one."""
        for attempt in range(20):
            if attempt:
                # Nodes registering together all write this one ConfigMap: retried at once, they
                # collide again (100 new ComputeNodes got about one code a second, and dozens
                # none). Back off, jittered, as client-go's RetryOnConflict does.
                await asyncio.sleep(random.uniform(0, min(2.0, 0.01 * 2**attempt)))
            data, version = await self.hub.read_config_map(self.namespace, self.name)
            registry: dict[str, dict[str, str]] = json.loads(data.get(KEY, "{}"))
            for code, owner in registry.items():
                if owner.get("uid") == uid:
                    return code
            code = issue_identity_code(node_type, region, next_sequence(registry))
            registry[code] = {"node": node, "uid": uid, "issuedAt": dt.datetime.now(dt.UTC).isoformat()}
            try:
                await self.hub.write_config_map(
                    self.namespace, self.name, {KEY: json.dumps(registry, sort_keys=True, indent=1)}, version)
            except Conflict:
                continue
            log.info("issued identity code %s to ComputeNode %s", code, node)
            return code
        raise RuntimeError("could not issue an identity code: the registry kept changing")
