"""The command lines' connection to an API server: kubeconfig and context through
``kubernetes.config`` (no copy of any credential is written: the client library's own temporary
files for inline certificates are removed when the process exits), the context's namespace,
and API errors turned into one line and a distinct exit status.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class Exit(enum.IntEnum):
    """Exit statuses of ``kubectl compute`` (the --help epilog and docs/plugin.md list them)."""

    OK = 0
    NO = 1
    """quote: the job fits nowhere now."""
    INVALID = 2
    """Bad arguments, or a manifest that is not valid (checked here, or by the hub: 400/422)."""
    CONFIG = 3
    """No usable kubeconfig, or no such context."""
    UNREACHABLE = 4
    """The API server does not answer (connection, TLS, timeout)."""
    UNAUTHORIZED = 5
    """401: the API server does not accept the credentials (expired token, wrong certificate)."""
    FORBIDDEN = 6
    """403: the user may not do this."""
    NOT_FOUND = 7
    """404: no such object, or the API (CRDs, the tenant API) is not installed."""
    CONFLICT = 8
    """409, 429 or another 4xx: e.g. logs of a job not started yet."""
    SERVER = 9
    """5xx: the API server or the operator's tenant API failed or is unavailable."""
    INTERRUPTED = 130


EXIT_HELP = """exit status:
  0  success
  1  quote: the job fits nowhere now
  2  invalid arguments or manifest (also when the hub rejects it: 400, 422)
  3  kubeconfig or context unusable
  4  the API server does not answer
  5  unauthorized (401: credentials not accepted)
  6  forbidden (403)
  7  not found (404: the object, or the CRDs or tenant API are not installed)
  8  conflict or another refusal (409, 429, other 4xx: e.g. logs of a job not started yet)
  9  server error (5xx: the API server, or the operator's tenant API, failed or is unavailable)"""


class PluginError(Exception):
    """A user-facing error: printed as one line, with its exit status."""

    def __init__(self, message: str, code: Exit = Exit.INVALID, status: int | None = None) -> None:
        super().__init__(" ".join(message.split()))
        self.code = code
        self.status = status
        """The HTTP status the API server answered, if it answered."""


def exit_for_status(status: int) -> Exit:
    if status == 0:
        return Exit.UNREACHABLE
    if status in (400, 422):
        return Exit.INVALID
    if status == 401:
        return Exit.UNAUTHORIZED
    if status == 403:
        return Exit.FORBIDDEN
    if status == 404:
        return Exit.NOT_FOUND
    if 400 <= status < 500:
        return Exit.CONFLICT
    return Exit.SERVER


def server_message(status: int, reason: str | None, body: str | bytes | None) -> str:
    """The API server's own message (its Status), else the HTTP reason."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else (body or "")
    try:
        parsed = json.loads(text) if text else {}
    except ValueError:
        parsed = {}
    message = parsed.get("message") if isinstance(parsed, dict) else None
    return str(message or reason or f"HTTP {status}")


STATUS_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
                  422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 502: "BadGateway",
                  503: "ServiceUnavailable", 504: "Timeout"}


def api_error(exc: BaseException, doing: str) -> PluginError:
    """One line for a failed call: ``<doing>: <Reason> (<status>): <the server's message>``."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        if status == 0:  # the client's own failure, e.g. TLS
            return PluginError(f"{doing}: cannot reach the API server: {exc.reason}", Exit.UNREACHABLE)
        message = server_message(status, exc.reason, exc.body)
        reason = STATUS_REASONS.get(status, exc.reason or "Error")
        return PluginError(f"{doing}: {reason} ({status}): {message}", exit_for_status(status), status)
    if isinstance(exc, (HTTPError, OSError)):
        return PluginError(f"{doing}: cannot reach the API server: {exc}", Exit.UNREACHABLE)
    return PluginError(f"{doing}: {exc}", Exit.SERVER)


def call(doing: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with its API and transport errors as a `PluginError`."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return fn(*args, **kwargs)
    except (ApiException, HTTPError, OSError) as exc:
        raise api_error(exc, doing) from exc


@dataclass
class Connection:
    api: Any
    """A ``kubernetes.client.ApiClient`` for the chosen context."""
    context: str
    namespace: str
    """The context's namespace (``default`` when it names none)."""


def _kubeconfig_files(kubeconfig: str | None) -> list[str]:
    if kubeconfig:
        return [kubeconfig]
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return listed or [os.path.expanduser("~/.kube/config")]


def connect(kubeconfig: str | None, context: str | None) -> Connection:
    """A client for ``context`` (default: the current one) of the kubeconfig (default: $KUBECONFIG,
    else ~/.kube/config; several files are merged as kubectl does), or in-cluster when there is
    no kubeconfig and this runs in a pod."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    files = _kubeconfig_files(kubeconfig)
    if not any(os.path.exists(f) for f in files) and not context and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except ConfigException as exc:
            raise PluginError(f"no kubeconfig, and the in-cluster configuration fails: {exc}", Exit.CONFIG) from exc
        namespace_file = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        namespace = namespace_file.read_text().strip() if namespace_file.exists() else "default"
        return Connection(client.ApiClient(), "in-cluster", namespace)
    where = ", ".join(files)
    try:
        contexts, current = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=os.pathsep.join(files))
    except (ConfigException, OSError, ValueError) as exc:
        raise PluginError(f"cannot read the kubeconfig ({where}): {exc}", Exit.CONFIG) from exc
    name = context or (current or {}).get("name")
    if not name:
        raise PluginError(f"the kubeconfig ({where}) has no current context: pass --context", Exit.CONFIG)
    chosen = next((c for c in contexts or [] if c.get("name") == name), None)
    if chosen is None:
        known = ", ".join(sorted(c.get("name", "") for c in contexts or []))
        raise PluginError(f"context {name!r} not found in {where} (contexts: {known or 'none'})", Exit.CONFIG)
    try:
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=os.pathsep.join(files), context=name)
    except (ConfigException, OSError, ValueError) as exc:
        raise PluginError(f"cannot use context {name!r} of {where}: {exc}", Exit.CONFIG) from exc
    namespace = (chosen.get("context") or {}).get("namespace") or "default"
    return Connection(api, name, namespace)


def raw_get(api: Any, path: str, query: list[tuple[str, str]], doing: str, *, accept: str = "application/json",
            timeout: float | tuple[float, float | None] | None = 30) -> Any:
    """GET ``path`` on the API server (an aggregated API's, say); the unread urllib3 response.
    Its failure status is raised as a `PluginError` with the server's message."""
    method, url, headers, _, _ = api.param_serialize("GET", path, query_params=query,
                                                     header_params={"Accept": accept}, auth_settings=["BearerToken"])
    response = call(doing, api.call_api, method, url, headers, _request_timeout=timeout)
    if not 200 <= response.status <= 299:
        body = response.read()
        message = server_message(response.status, response.reason, body)
        reason = STATUS_REASONS.get(response.status, response.reason or "Error")
        raise PluginError(f"{doing}: {reason} ({response.status}): {message}", exit_for_status(response.status),
                          response.status)
    return response.response


def read_json(api: Any, path: str, query: list[tuple[str, str]], doing: str) -> Any:
    response = raw_get(api, path, query, doing)
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()


def stream(response: Any, chunk: int = 4096) -> Iterator[bytes]:
    """The body of an unread response as it arrives."""
    try:
        yield from response.stream(chunk, decode_content=True)
    finally:
        response.release_conn()
