"""MultiKueue on the test bed, for ``bench/dispatch.py --with-multikueue``.

Kueue's manager is built from its Go module by ``bench/build-kueue`` (as shipped, and with
``bench/multikueue-qps.patch``: MultiKueue's clients for the workers unthrottled, since a
kubeconfig carries no QPS and client-go then allows 5 requests/s). One manager per test-bed
cluster runs out of cluster as a plain process: the hub's as the MultiKueue manager, the
members' as workers. No webhook is reachable (the API servers are not told of any), so the
benchmark does what Kueue's webhooks would: the hub Jobs are created suspended, with the
``kueue.x-k8s.io/queue-name`` label and ``spec.managedBy: kueue.x-k8s.io/multikueue``.
Internal cert management is off; the managers still want a serving certificate for their
(unused) webhook servers and, hard-coded, one for metrics under /etc/kueue/metrics/certs: a
self-signed pair is made once (openssl) and kept in the binary cache.

Per variant: fresh managers, the CRDs (from the module's config/components/crd/bases),
ResourceFlavor, ClusterQueue and LocalQueue in every cluster, the members' kubeconfig Secrets,
MultiKueueClusters, MultiKueueConfig and AdmissionCheck on the hub; one Job checked end to end
(hub Job -> worker Job -> pod Running); then N Jobs created on the hub, 64 in flight, followed
on the workers with watches like ``ours`` in dispatch.py: hub create -> worker Job created,
-> pod Running, jobs/s, CPU seconds and peak RSS of the managers.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as aclient
from kubernetes_asyncio.config import new_client_from_config

HERE = Path(__file__).resolve().parent
KUEUE = "kueue.x-k8s.io"
KV = "v1beta2"
MK_LABEL = "interconnect.dev/bench"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
VARIANTS = {"shipped": "kueue-manager", "qps-lifted": "kueue-manager-qps"}
METRICS_CERTS = Path("/etc/kueue/metrics/certs")


def build() -> Path:
    out = subprocess.run(["nice", "-n", "10", str(HERE / "build-kueue")], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    return Path(out.strip().splitlines()[-1])


def _certs(bin_dir: Path) -> Path:
    certs = bin_dir / "certs"
    if not (certs / "tls.crt").exists():
        certs.mkdir(exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                        "-subj", "/CN=localhost", "-keyout", str(certs / "tls.key"), "-out", str(certs / "tls.crt")],
                       check=True, capture_output=True)
    if not (METRICS_CERTS / "tls.crt").exists():
        METRICS_CERTS.mkdir(parents=True, exist_ok=True)
        for f in ("tls.crt", "tls.key"):
            shutil.copy(certs / f, METRICS_CERTS / f)
    return certs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kubectl(bed: Any, cluster: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
    done = subprocess.run(bed.kubectl_cmd(cluster, *args), input=stdin, text=True, capture_output=True)
    if check and done.returncode:
        raise RuntimeError(f"kubectl {cluster} {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _apply(bed: Any, cluster: str, *objs: dict[str, Any]) -> None:
    _kubectl(bed, cluster, "apply", "--server-side", "--force-conflicts", "-f", "-",
             stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def install(bed: Any, bin_dir: Path, gpus_per_member: int) -> None:
    """CRDs, queues and the MultiKueue objects (idempotent)."""
    clusters = [bed.hub.name, *[c.name for c in bed.members]]
    for c in clusters:
        _kubectl(bed, c, "apply", "--server-side", "--force-conflicts", "-f", str(bin_dir / "crd"))
    for c in clusters:
        _kubectl(bed, c, "wait", "--for=condition=Established", "--timeout=120s", "-f", str(bin_dir / "crd"))
        _kubectl(bed, c, "create", "namespace", "kueue-system", check=False)
    flavor = {"apiVersion": f"{KUEUE}/{KV}", "kind": "ResourceFlavor", "metadata": {"name": "mk-bench"}}

    def queue(gpus: int, checks: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {"namespaceSelector": {}, "resourceGroups": [{
            "coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
            "flavors": [{"name": "mk-bench", "resources": [
                {"name": "cpu", "nominalQuota": "100000"}, {"name": "memory", "nominalQuota": "1000Ti"},
                {"name": "nvidia.com/gpu", "nominalQuota": str(gpus)}]}]}]}
        if checks:
            spec["admissionChecksStrategy"] = {"admissionChecks": [{"name": "mk-bench"}]}
        return {"apiVersion": f"{KUEUE}/{KV}", "kind": "ClusterQueue", "metadata": {"name": "mk-bench"}, "spec": spec}

    for member in bed.members:
        _apply(bed, member.name, flavor, queue(gpus_per_member, False))
        kubeconfig = _kubectl(bed, member.name, "config", "view", "--raw", "--minify", "--flatten")
        _apply(bed, bed.hub.name, {"apiVersion": "v1", "kind": "Secret",
                                   "metadata": {"name": f"mk-{member.name}", "namespace": "kueue-system"},
                                   "stringData": {"kubeconfig": kubeconfig}},
               {"apiVersion": f"{KUEUE}/{KV}", "kind": "MultiKueueCluster", "metadata": {"name": member.name},
                "spec": {"clusterSource": {"kubeConfig": {"locationType": "Secret",
                                                          "location": f"mk-{member.name}"}}}})
    _apply(bed, bed.hub.name, flavor, queue(100000, True),
           {"apiVersion": f"{KUEUE}/{KV}", "kind": "MultiKueueConfig", "metadata": {"name": "mk-bench"},
            "spec": {"clusters": [m.name for m in bed.members]}},
           {"apiVersion": f"{KUEUE}/{KV}", "kind": "AdmissionCheck", "metadata": {"name": "mk-bench"},
            "spec": {"controllerName": "kueue.x-k8s.io/multikueue",
                     "parameters": {"apiGroup": KUEUE, "kind": "MultiKueueConfig", "name": "mk-bench"}}})


def _config(certs: Path) -> dict[str, Any]:
    # The shipped manager config (config/components/manager/controller_manager_config.yaml) for
    # client QPS and concurrency; only batch/Job integrated; no leader election, metrics, probes or
    # visibility server.
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2", "kind": "Configuration", "namespace": "kueue-system",
        "health": {"healthProbeBindAddress": "0"}, "metrics": {"bindAddress": "0"},
        "webhook": {"port": _free_port(), "host": "127.0.0.1", "certDir": str(certs)},
        "leaderElection": {"leaderElect": False}, "internalCertManagement": {"enable": False},
        "controller": {"groupKindConcurrency": {"Job.batch": 5, "Pod": 5, "Workload.kueue.x-k8s.io": 5,
                                                "LocalQueue.kueue.x-k8s.io": 1, "Cohort.kueue.x-k8s.io": 1,
                                                "ClusterQueue.kueue.x-k8s.io": 1,
                                                "ResourceFlavor.kueue.x-k8s.io": 1}},
        "clientConnection": {"qps": 50, "burst": 100},
        "integrations": {"frameworks": ["batch/job"]},
        # Its API server binds a fixed port (8082) in every manager on this machine; not on the path measured.
        "featureGates": {"VisibilityOnDemand": False},
    }


@contextmanager
def managers(bed: Any, bin_dir: Path, variant: str, logs: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    certs = _certs(bin_dir)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for c in [bed.hub, *bed.members]:
            cfg = logs / f"kueue-{variant}-{c.name}.json"
            cfg.write_text(json.dumps(_config(certs)))
            log = open(logs / f"kueue-{variant}-{c.name}.log", "wb")  # noqa: SIM115
            procs[c.name] = subprocess.Popen(
                [str(bin_dir / VARIANTS[variant]), f"--config={cfg}", f"--kubeconfig={c.kubeconfig}"],
                stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, KUBECONFIG=str(c.kubeconfig)))
        yield procs
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def job_body(name: str, ns: str, tag: str) -> dict[str, Any]:
    gpu = {"nvidia.com/gpu": "1"}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": ns, "labels": {MK_LABEL: tag, QUEUE_LABEL: "mk-bench"}},
            "spec": {"suspend": True, "managedBy": "kueue.x-k8s.io/multikueue", "backoffLimit": 0,
                     "template": {
                         "metadata": {"labels": {MK_LABEL: tag},
                                      "annotations": {"testbed.interconnect.dev/run-for": "5s"}},
                         "spec": {"restartPolicy": "Never", "nodeSelector": {MK_LABEL: "true"},
                                  "containers": [{"name": "c", "image": "x",
                                                  "resources": {"limits": gpu, "requests": gpu}}]}}}}


def _stat(pid: int) -> tuple[float, float]:
    """CPU seconds so far and peak RSS (MiB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    return cpu, hwm / 1024


async def measure(bed: Any, n: int, procs: dict[str, subprocess.Popen[bytes]], ns: str, *,
                  timeout: float, watch_cls: Any, percentiles: Any, cpu_by_component: Any,
                  cpu_delta: Any) -> dict[str, Any]:
    """One probe Job end to end, then N Jobs; the namespace exists in every cluster with its LocalQueue."""
    hub = await new_client_from_config(config_file=str(bed.hub.kubeconfig))
    workers = {c.name: await new_client_from_config(config_file=str(c.kubeconfig)) for c in bed.members}
    created: dict[str, float] = {}
    where: dict[str, str] = {}
    running: dict[str, float] = {}
    submitted: dict[str, float] = {}

    async def watch(member: str, kind: str) -> None:
        api: Any = aclient.BatchV1Api(workers[member]) if kind == "jobs" else aclient.CoreV1Api(workers[member])
        lister = api.list_namespaced_job if kind == "jobs" else api.list_namespaced_pod
        while True:
            try:
                async with watch_cls().stream(lister, ns, label_selector=MK_LABEL, timeout_seconds=300) as stream:
                    async for event in stream:
                        obj = event["object"]
                        if kind == "jobs":
                            name = obj["metadata"]["name"]
                            if name not in created:
                                created[name] = time.perf_counter()
                                where[name] = member
                        elif (obj.get("status") or {}).get("phase") in ("Running", "Succeeded"):
                            name = obj["metadata"]["labels"].get("batch.kubernetes.io/job-name", "")
                            running.setdefault(name, time.perf_counter())
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.2)

    watchers = [asyncio.create_task(watch(mm, kind)) for mm in workers for kind in ("jobs", "pods")]
    await asyncio.sleep(1.0)
    batch = aclient.BatchV1Api(hub)
    # End to end, one Job, before the measurement.
    t = time.perf_counter()
    await batch.create_namespaced_job(ns, job_body("probe", ns, "multikueue-probe"))
    probe_deadline = time.monotonic() + 300
    while "probe" not in running and time.monotonic() < probe_deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    probe = {"worker": where.get("probe"), "created_s": created.get("probe", t) - t,
             "running_s": running.get("probe", t) - t, "ok": "probe" in running}
    print(f"  probe Job: {'ok' if probe['ok'] else 'FAILED'}: worker Job on {probe['worker']} after "
          f"{probe['created_s']:.1f}s, pod Running after {probe['running_s']:.1f}s", flush=True)
    if not probe["ok"]:
        for w in watchers:
            w.cancel()
        await hub.close()
        for api in workers.values():
            await api.close()
        return {"jobs": n, "probe": probe, "dispatched": 0}

    sem = asyncio.Semaphore(64)

    async def submit(i: int) -> None:
        name = f"mk{i}"
        async with sem:
            submitted[name] = time.perf_counter()
            await batch.create_namespaced_job(ns, job_body(name, ns, "multikueue"))

    stat0 = {c: _stat(p.pid) for c, p in procs.items()}
    cpu_before = cpu_by_component(bed)
    t0 = time.perf_counter()
    await asyncio.gather(*(submit(i) for i in range(n)))
    submit_done = time.perf_counter() - t0
    deadline = time.monotonic() + timeout
    while len(created.keys() & submitted.keys()) < n and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    stat1 = {c: _stat(p.pid) for c, p in procs.items()}
    cpu_used = cpu_delta(cpu_before, cpu_by_component(bed))
    window = time.perf_counter() - t0
    ours = {k: v for k, v in created.items() if k in submitted}
    last = max(ours.values()) - t0 if ours else float("nan")
    complete = len(ours) == n
    run_deadline = time.monotonic() + (120 if complete else 5)
    while len(running.keys() & submitted.keys()) < len(ours) and time.monotonic() < run_deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    for w in watchers:
        w.cancel()
    await hub.close()
    for api in workers.values():
        await api.close()
    per_worker: dict[str, int] = {}
    for k in ours:
        per_worker[where[k]] = per_worker.get(where[k], 0) + 1
    return {
        "jobs": n, "probe": probe, "dispatched": len(ours), "running": len(running.keys() & submitted.keys()),
        "submit_seconds": submit_done, "window_seconds": window,
        "dispatch_seconds": last if complete else window,
        # jobs per second: all N over the time to the last one, or those that made it within the window
        "throughput": len(ours) / (last if complete else window),
        "dispatch_latency": percentiles([v - submitted[k] for k, v in ours.items()]),
        "to_running": percentiles([v - submitted[k] for k, v in running.items() if k in submitted]),
        "per_worker": per_worker,
        "managers_cpu_seconds": {c: round(stat1[c][0] - stat0[c][0], 2) for c in procs},
        "managers_peak_rss_mib": {c: round(stat1[c][1], 1) for c in procs},
        "cpu_seconds_until_dispatched": cpu_used,
    }


def run_variant(bed: Any, bin_dir: Path, variant: str, n: int, logs: Path, *, timeout: float,
                **helpers: Any) -> dict[str, Any]:
    ns = f"mk-{variant[:4]}-{uuid.uuid4().hex[:5]}"
    clusters = [bed.hub.name, *[c.name for c in bed.members]]
    for c in clusters:
        _kubectl(bed, c, "create", "namespace", ns)
        _apply(bed, c, {"apiVersion": f"{KUEUE}/{KV}", "kind": "LocalQueue",
                        "metadata": {"name": "mk-bench", "namespace": ns}, "spec": {"clusterQueue": "mk-bench"}})
    try:
        with managers(bed, bin_dir, variant, logs) as procs:
            time.sleep(3)
            dead = [c for c, p in procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"Kueue manager exited on {dead}; see {logs}")
            result = asyncio.run(measure(bed, n, procs, ns, timeout=timeout, **helpers))
            result.update(variant=variant, namespace=ns)
            return result
    finally:
        cleanup(bed, ns)


def cleanup(bed: Any, ns: str) -> None:
    """With the managers stopped: drop Kueue's finalizers in the namespace, then delete it."""
    asyncio.run(_drop_finalizers(bed, ns))
    for c in [bed.hub.name, *[m.name for m in bed.members]]:
        _kubectl(bed, c, "delete", "namespace", ns, "--wait=false", check=False)


async def _drop_finalizers(bed: Any, ns: str) -> None:
    sem = asyncio.Semaphore(32)

    async def one(custom: Any, name: str) -> None:
        async with sem:
            with suppress(aclient.ApiException):
                await custom.patch_namespaced_custom_object(
                    KUEUE, KV, ns, "workloads", name, {"metadata": {"finalizers": None}},
                    _content_type="application/merge-patch+json")

    for c in [bed.hub, *bed.members]:
        api = await new_client_from_config(config_file=str(c.kubeconfig))
        custom = aclient.CustomObjectsApi(api)
        try:
            listed = await custom.list_namespaced_custom_object(KUEUE, KV, ns, "workloads")
            await asyncio.gather(*(one(custom, w["metadata"]["name"]) for w in listed["items"]
                                   if w["metadata"].get("finalizers")))
        finally:
            await api.close()


def uninstall(bed: Any, bin_dir: Path) -> None:
    """Leave the test bed as it was: Kueue's objects (finalizers dropped) and CRDs go."""
    for c in [bed.hub.name, *[m.name for m in bed.members]]:
        for kind in ("clusterqueues", "resourceflavors", "localqueues", "admissionchecks", "multikueueclusters",
                     "multikueueconfigs", "workloads"):
            out = _kubectl(bed, c, "get", f"{kind}.{KUEUE}", "-A", "-o",
                           "jsonpath={range .items[*]}{.metadata.namespace}{' '}{.metadata.name}{'\\n'}{end}",
                           check=False)
            for line in out.splitlines():
                parts = line.split()
                if not parts:
                    continue
                where = ["-n", parts[0]] if len(parts) == 2 else []
                _kubectl(bed, c, "patch", f"{kind}.{KUEUE}", parts[-1], *where, "--type=merge", "-p",
                         '{"metadata":{"finalizers":null}}', check=False)
        _kubectl(bed, c, "delete", "-f", str(bin_dir / "crd"), "--wait=false", "--ignore-not-found", check=False)
        _kubectl(bed, c, "delete", "namespace", "kueue-system", "--wait=false", "--ignore-not-found", check=False)
