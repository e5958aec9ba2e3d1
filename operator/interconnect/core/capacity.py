"""What a member really has: GPU cards by node, by model and by offer.

An offer never sells cards that are not there: its free cards are derived from the member's
own state (the allocatable cards of the Ready, schedulable nodes its selector matches, minus
what live pods request), minus the cards the hub reserved for placements whose pods do not
exist yet. A node's cards are its model's device-plugin resource (``nvidia.com/gpu``,
``huawei.com/Ascend910``, ``cambricon.com/mlu``, ...: the accelerator catalogue), its model
what its labels say (core/accelerators.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from interconnect.core.accelerators import accelerator_resources
from interconnect.core.quantity import whole_units
from interconnect.core.reservations import Reservation
from interconnect.core.vocabulary import GPU_PRODUCT_LABEL, GPU_RESOURCE


@dataclass(frozen=True, slots=True)
class MemberNode:
    """A node of a member cluster, as far as GPU capacity is concerned."""

    name: str
    labels: Mapping[str, str]
    capacity_gpus: int
    allocatable_gpus: int
    ready: bool
    schedulable: bool
    model: str | None = None
    """The catalogued model its labels denote (set when projected); None: read
    ``nvidia.com/gpu.product``."""
    uid: str = ""
    """The Node object's UID: the same machine seen through two ComputeNodes that point at one
    member cluster has the same UID (names alone could repeat across clusters)."""

    @property
    def gpu_model(self) -> str | None:
        return self.model if self.model is not None else self.labels.get(GPU_PRODUCT_LABEL)

    @property
    def usable(self) -> bool:
        return self.ready and self.schedulable


@dataclass(frozen=True, slots=True)
class MemberPod:
    """A pod on a member that holds GPUs until it terminates.

    ``offer`` and ``job_uid`` are set for pods the hub dispatched (from their labels).
    """

    uid: str
    node: str | None
    gpus: int
    terminal: bool
    offer: str | None = None
    job_uid: str | None = None


@dataclass(frozen=True, slots=True)
class OfferCards:
    total: int
    in_use: int
    reserved: int

    @property
    def free(self) -> int:
        return max(0, self.total - self.in_use - self.reserved)


@dataclass(frozen=True, slots=True)
class ModelCapacity:
    model: str
    total: int
    allocatable: int
    in_use: int


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def offer_nodes(nodes: Iterable[MemberNode], selector: Mapping[str, str], gpu_model: str) -> list[MemberNode]:
    """Nodes that back an offer: its selector matches and they carry its GPU model."""
    return [n for n in nodes if n.gpu_model == gpu_model and selector_matches(selector, n.labels)]


class MemberCards:
    """One member's nodes, indexed once for all the offers of a pass, and its GPU pods by node.

    Every offer's free cards used to be found by a walk over all the member's nodes and pods: with
    many offers on one member (a hundred ComputeNodes on a few member clusters, each with its own
    node pool), a placement pass was offers x pods. Here nodes are grouped by the value of each
    label an offer selects on (built the first time an offer asks for that label), and the pods
    of a node or of an offer not bound yet are asked of the member's watch, which keeps them so.
    """

    __slots__ = ("_by_label", "_nodes", "_pods_on", "_unbound")

    def __init__(self, nodes: Iterable[MemberNode], pods_on: Callable[[str], Iterable[MemberPod]],
                 unbound: Callable[[str], Iterable[MemberPod]]) -> None:
        self._nodes = tuple(nodes)
        self._by_label: dict[str, dict[str, list[MemberNode]]] = {}
        self._pods_on = pods_on
        self._unbound = unbound

    def backing(self, selector: Mapping[str, str], gpu_model: str) -> list[MemberNode]:
        """The nodes of an offer (`offer_nodes`), from the index of its selector's first label."""
        if not selector:
            return offer_nodes(self._nodes, selector, gpu_model)
        key = min(selector)
        values = self._by_label.get(key)
        if values is None:
            values = self._by_label[key] = {}
            for node in self._nodes:
                if key in node.labels:
                    values.setdefault(node.labels[key], []).append(node)
        return offer_nodes(values.get(selector[key], ()), selector, gpu_model)

    def pods_of(self, backing: Iterable[MemberNode], offer: str) -> list[MemberPod]:
        """The pods `offer_cards` counts for an offer: those bound to its nodes, and those of the
        offer not bound yet."""
        pods = [pod for node in backing for pod in self._pods_on(node.name)]
        pods.extend(self._unbound(offer))
        return pods


def offer_cards(
    *,
    offer: str,
    cards_offered: int,
    selector: Mapping[str, str],
    gpu_model: str,
    nodes: Iterable[MemberNode],
    pods: Iterable[MemberPod],
    reservations: Iterable[Reservation],
) -> OfferCards:
    """Cards of one offer: total (capped by what it offers), in use, and reserved."""
    backing = offer_nodes(nodes, selector, gpu_model)
    backing_names = {n.name for n in backing}
    physical = sum(n.allocatable_gpus for n in backing if n.usable)
    in_use = 0
    held_by_job: dict[str, int] = {}
    for pod in pods:
        if pod.terminal or pod.gpus <= 0:
            continue
        counted = pod.node in backing_names if pod.node else pod.offer == offer
        if counted:
            in_use += pod.gpus
            if pod.job_uid:
                held_by_job[pod.job_uid] = held_by_job.get(pod.job_uid, 0) + pod.gpus
    # A reservation covers only the cards its job's pods do not hold yet: no double count.
    reserved = sum(
        max(0, r.cards - held_by_job.get(r.uid, 0)) for r in reservations if r.offer == offer
    )
    total = min(cards_offered, physical)
    return OfferCards(total=total, in_use=min(in_use, physical), reserved=reserved)


@dataclass(frozen=True, slots=True)
class OfferPool:
    """Where an offer's cards physically are: its ComputeNode, its model, and the machines
    (node UIDs, see `machine_ids`) that back it."""

    node: str
    model: str
    machines: frozenset[str]


def machine_ids(node_ref: str, nodes: Iterable[MemberNode]) -> frozenset[str]:
    """The machines' identities: the Node UID, or the ComputeNode and node name when a node has
    none (a projection without it)."""
    return frozenset(n.uid or f"{node_ref}/{n.name}" for n in nodes)


def sharing_offers(pools: Mapping[str, OfferPool]) -> dict[str, tuple[str, ...]]:
    """For each offer, the offers whose cards it may sell too (itself included, in name order).

    Two offers of one model share cards when they are on the same ComputeNode (what the hub
    has always assumed, so offers whose machines are not seen yet still share), or when any
    machine backs both: two ComputeNodes pointing at one member cluster with overlapping node
    pools. A reservation on any of them counts against each of them in full. That is exact when
    the pools are equal and errs only towards selling less when they overlap in part: a
    reservation's pods can only land on its own offer's machines, so every reservation that
    could hold one of this offer's machines is counted.
    """
    by_node: dict[tuple[str, str], set[str]] = {}
    by_machine: dict[tuple[str, str], set[str]] = {}
    for name, pool in pools.items():
        by_node.setdefault((pool.node, pool.model), set()).add(name)
        for machine in pool.machines:
            by_machine.setdefault((pool.model, machine), set()).add(name)
    out: dict[str, tuple[str, ...]] = {}
    for name, pool in pools.items():
        shared = set(by_node[pool.node, pool.model])
        for machine in pool.machines:
            shared |= by_machine[pool.model, machine]
        out[name] = tuple(sorted(shared))
    return out


def capacity_by_model(nodes: Iterable[MemberNode], pods: Iterable[MemberPod]) -> list[ModelCapacity]:
    """A member's GPUs per model: capacity, allocatable on usable nodes, and in use."""
    node_list = list(nodes)
    model_of = {n.name: n.gpu_model for n in node_list}
    totals: dict[str, list[int]] = {}
    for node in node_list:
        if node.gpu_model is None or node.capacity_gpus <= 0:
            continue
        entry = totals.setdefault(node.gpu_model, [0, 0, 0])
        entry[0] += node.capacity_gpus
        if node.usable:
            entry[1] += node.allocatable_gpus
    for pod in pods:
        model = model_of.get(pod.node) if pod.node else None
        if model is not None and not pod.terminal and model in totals:
            totals[model][2] += pod.gpus
    return [ModelCapacity(m, t, a, u) for m, (t, a, u) in sorted(totals.items())]


def container_request(container: Mapping[str, object], resource: str = GPU_RESOURCE) -> int:
    """What one container asks of an extended resource: its request, else its limit (the API
    defaults an extended resource's request to its limit). Raises `QuantityError` on bad text."""
    resources = container.get("resources") or {}
    if not isinstance(resources, Mapping):
        return 0
    for key in ("requests", "limits"):
        values = resources.get(key) or {}
        if isinstance(values, Mapping) and resource in values:
            return whole_units(values[resource])
    return 0


def is_sidecar(container: Mapping[str, object]) -> bool:
    """A native sidecar: an init container with restartPolicy Always, running beside the app."""
    return container.get("restartPolicy") == "Always"


def effective_request(containers: Iterable[Mapping[str, object]],
                      init_containers: Iterable[Mapping[str, object]] = (),
                      resource: str = GPU_RESOURCE) -> int:
    """What a pod holds of ``resource`` for as long as it runs, as kube-scheduler counts it.

    Kubernetes' rule (``PodRequests`` in k8s.io/component-helpers): the app containers and every
    sidecar run together, so their requests add up; each ordinary init container runs alone
    beside the sidecars started before it; the pod holds the larger of the two. A main container
    and a sidecar asking for one card each hold two cards.
    """
    running = sum(container_request(c, resource) for c in containers)
    sidecars = 0
    init_peak = 0
    for container in init_containers:
        request = container_request(container, resource)
        if is_sidecar(container):
            sidecars += request
            running += request
            init_peak = max(init_peak, sidecars)
        else:
            init_peak = max(init_peak, request + sidecars)
    return max(running, init_peak)


def gpus_requested(containers: Iterable[Mapping[str, object]],
                   init_containers: Iterable[Mapping[str, object]] = ()) -> int:
    """Accelerator cards a pod holds: its effective request of every catalogued accelerator
    resource (a pod asks for one vendor's; a pod asking for two holds both)."""
    init = list(init_containers)
    apps = list(containers)
    return sum(effective_request(apps, init, resource) for resource in accelerator_resources())
