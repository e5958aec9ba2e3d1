"""kopf handlers: thin translations of Kubernetes events into calls of the services.

Importing this package registers every handler with kopf's default registry.
"""

from interconnect.handlers import lifecycle, resources, runtime, tenant_api  # noqa: F401
