"""The vocabulary of rpiaas: node types, nodes, clusters and tasks.

Plain dataclasses, shared by the scenario parser, the control plane, both
shells and the result writers. Units are in the names: ``mem_mb`` is
mebibytes, ``*_w`` watts, ``*_s`` seconds, and ``work_core_s`` is the work of
a task in seconds of one *reference core* (speed 1.0).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, TypeVar, overload

__all__ = [
    "MAX_TASK_ID",
    "PROFILES",
    "RARE_DEFAULTS",
    "SECRET_OPTIONS",
    "Cluster",
    "ClusterSpec",
    "Image",
    "Layer",
    "Node",
    "NodeType",
    "PowerState",
    "Task",
    "TaskState",
    "job_cores",
    "job_end_s",
    "job_runtime_s",
    "part_cores",
]

# the largest task id (inputs are bounded to it): any reader of events.jsonl or tasks.csv that
# parses numbers as doubles (JavaScript, pandas with a missing value) still gets every id exactly
MAX_TASK_ID = 2**53


@dataclass(frozen=True)
class NodeType:
    """A kind of machine: its capacity, speed and power profile.

    ``speed`` is relative to the reference core: a task of ``work_core_s`` on
    ``cores`` cores runs ``start_overhead_s + work_core_s / (cores * speed)``
    seconds (``start_overhead_s``, default 0, is what starting a task costs on
    top of its work: process start, data staging; ``rpiaas calibrate`` fits it
    to a testbed run).  Power while
    on is ``power_idle_w + (power_max_w - power_idle_w) * utilisation``; while
    off it is ``power_off_w``; while booting (``boot_s`` seconds) it is
    ``power_boot_w``.

    ``link_mbps`` is the node's network link in megabits per second and ``image_cache_mb``
    the space it keeps for container image layers (MB, 10^6 bytes, as registries give image
    sizes): pulling ``size_mb`` alone takes :meth:`pull_s`; concurrent pulls share the link
    (:mod:`rpiaas.core.images`).  ``pull_latency_s`` (default 0) is the fixed part of a pull that
    carries something, paid once per pull besides the transfer: a registry's round trips, the
    engine unpacking and committing the image (``rpiaas calibrate`` fits it with ``link_mbps``).
    """

    name: str
    cores: int
    mem_mb: int
    speed: float
    power_idle_w: float
    power_max_w: float
    power_off_w: float
    boot_s: float
    power_boot_w: float
    source: str = ""
    start_overhead_s: float = 0.0
    link_mbps: float = 1000.0
    image_cache_mb: float = 16000.0
    pull_latency_s: float = 0.0

    def pull_rate_mb_s(self) -> float:
        """MB of image layers this node's link carries per second (megabits / 8)."""
        return self.link_mbps / 8.0

    def pull_s(self, size_mb: float) -> float:
        """Seconds a pull of ``size_mb`` of image layers takes on this node's link alone: its
        latency and the transfer, or 0 for a pull of nothing (every layer held).  What
        :mod:`rpiaas.core.images`, the one home of the pull rule, gives a lone pull (it shares
        the rate among concurrent pulls, each paying its latency)."""
        return self.pull_latency_s + size_mb / self.pull_rate_mb_s() if size_mb > 0 else 0.0

    def work_s(self, work_core_s: float, cores: int) -> float:
        """Seconds ``work_core_s`` of work takes on ``cores`` cores at this type's speed."""
        return work_core_s / (cores * self.speed)

    def runtime_s(self, work_core_s: float, cores: int) -> float:
        """How long a task of ``work_core_s`` on ``cores`` cores runs on this type: the start
        overhead, then its work (:meth:`work_s`).  The one home of the rule: the control
        plane's estimates, the simulation's task ends and the run-length bounds ask it."""
        return self.start_overhead_s + work_core_s / (cores * self.speed)  # work_s, written out

    def end_s(self, start_s: float, work_core_s: float, cores: int) -> float:
        """When such a task started at ``start_s`` ends: :meth:`runtime_s` after it, added
        in the order of the events (the start, its overhead, its work), so a task end
        falls on the same double whatever the start time's magnitude."""
        return start_s + self.start_overhead_s + work_core_s / (cores * self.speed)  # (work_s)

    def power_w(self, state: int, utilization: float) -> float:
        """The power model: watts drawn in power ``state`` (a :class:`PowerState`) at CPU
        ``utilization`` (0 to 1; only read while on)."""
        if state == _ON:
            return self.power_idle_w + (self.power_max_w - self.power_idle_w) * utilization
        if state == _BOOTING:
            return self.power_boot_w
        return self.power_off_w


def _profile(
    name: str,
    cores: int,
    mem_mb: int,
    speed: float,
    idle_w: float,
    max_w: float,
    off_w: float,
    boot_s: float,
    source: str,
    link_mbps: float = 1000.0,
    image_cache_mb: float = 16000.0,
) -> NodeType:
    return NodeType(name, cores, mem_mb, speed, idle_w, max_w, off_w, boot_s, idle_w, source,
                    link_mbps=link_mbps, image_cache_mb=image_cache_mb)


_PI_POWER = (
    "idle/max power: USB power-meter measurements of the bare board, idle at the "
    "console and under stress on all cores (Pi Dramble power benchmarks, "
    "pidramble.com; Raspberry Pi 5: Jeff Geerling's measurements, 2023)"
)
_PI_SPEED = (
    "speed: single-core throughput relative to the Pi 4B's Cortex-A72 at 1.5 GHz, "
    "approximate (clock x IPC); calibrate it with `rpiaas calibrate`"
)
_PI_BOOT = "boot_s: typical network boot to a running agent; calibrate on the testbed"
_PI_LINK = (
    "link_mbps: iperf TCP throughput of the board's wired Ethernet (Jeff Geerling's "
    "benchmarks: Pi 3 B 94.4 Mbit/s, its 10/100 LAN9514 behind the one USB 2.0 bus; Pi 3 B+ "
    "~224 Mbit/s, gigabit still behind USB 2.0; Pi 4 B and 5 over 900 Mbit/s): an upper bound "
    "for an image pull, which also decompresses and writes to the SD card; fit it with "
    "`rpiaas calibrate` from measured pulls. image_cache_mb: a share of a 16 GB SD card"
)

PROFILES: dict[str, NodeType] = {
    p.name: p
    for p in (
        _profile("rpi3b", 4, 1024, 0.45, 1.4, 3.7, 0.1, 40.0,
                 f"Raspberry Pi 3 Model B (Cortex-A53 1.2 GHz, 1 GB). {_PI_POWER}. {_PI_SPEED}. {_PI_BOOT}. "
                 f"{_PI_LINK}.", link_mbps=94.0, image_cache_mb=4000.0),
        _profile("rpi3bplus", 4, 1024, 0.55, 1.9, 5.1, 0.1, 35.0,
                 f"Raspberry Pi 3 Model B+ (Cortex-A53 1.4 GHz, 1 GB). {_PI_POWER}. {_PI_SPEED}. {_PI_BOOT}. "
                 f"{_PI_LINK}.", link_mbps=224.0, image_cache_mb=4000.0),
        _profile("rpi4b", 4, 4096, 1.0, 2.7, 6.4, 0.3, 25.0,
                 f"Raspberry Pi 4 Model B (Cortex-A72 1.5 GHz, 4 GB variant). {_PI_POWER}. "
                 f"The reference core. {_PI_BOOT}. {_PI_LINK}.", link_mbps=940.0, image_cache_mb=4000.0),
        _profile("rpi5", 4, 8192, 2.2, 2.8, 9.7, 0.05, 15.0,
                 f"Raspberry Pi 5 (Cortex-A76 2.4 GHz, 8 GB variant). {_PI_POWER}; off = halted "
                 f"with POWER_OFF_ON_HALT=1. {_PI_SPEED}. {_PI_BOOT}. {_PI_LINK}.",
                 link_mbps=940.0, image_cache_mb=4000.0),
        _profile("x86_server", 32, 131072, 2.5, 100.0, 300.0, 5.0, 120.0,
                 "A generic two-socket x86 server, 32 cores, 128 GB: idle ~1/3 of peak as in "
                 "SPECpower_ssj2008 results of current servers; off = BMC standby. Speed "
                 "approximate; calibrate it. link_mbps: a 10 GbE port; image_cache_mb: 200 GB of disk.",
                 link_mbps=10000.0, image_cache_mb=200000.0),
    )
}
# The virtual Pi of `rpiaas testbed up --virtual`: calibrated on the virtual testbed.
PROFILES["qemu_a53"] = replace(
    _profile("qemu_a53", 1, 512, 0.29, 1.4, 3.7, 0.1, 9.0,
             "A virtual Pi of `rpiaas testbed up --virtual`: QEMU `virt`, one Cortex-A53 core "
             "under TCG (no KVM), 512 MB, Debian bookworm arm64 over NFS. speed 0.29 and "
             "start_overhead_s 0.81 s: `rpiaas calibrate` of scenarios/virtual-testbed.yaml run "
             "live on two of them (`cpu` tasks) on a 2-core x86-64 host, 2026-12; boot_s: the "
             "median boot report (kernel start to agent up) there. Both follow the host's "
             "speed: calibrate them on yours. Power: a Raspberry Pi 3 Model B's figures, for a "
             "comparable node; a VM draws its host's power, which no agent measures."),
    start_overhead_s=0.81)
# The original RPiaaS config names its Pis by generation only ("rpi3").
PROFILES["rpi3"] = PROFILES["rpi3b"]
PROFILES["rpi4"] = PROFILES["rpi4b"]


class _Options:
    """What a power driver's or a meter's spec shares: its options as the cluster file gives
    them, read by key, with the credentials among them never shown (not even by ``repr``)."""

    __slots__ = ()
    options: tuple[tuple[str, Any], ...]
    _named_by: ClassVar[str]  # the field that names the driver or the source

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)

    def secrets(self) -> list[str]:
        """The credentials among the options (:data:`SECRET_OPTIONS`): what no message may show."""
        return [str(v) for k, v in self.options if k in SECRET_OPTIONS and v is not None]

    def __repr__(self) -> str:
        shown = tuple((k, "[redacted]" if k in SECRET_OPTIONS else v) for k, v in self.options)
        name = self._named_by
        return f"{type(self).__name__}({name}={getattr(self, name)!r}, options={shown!r})"


@dataclass(frozen=True, slots=True, repr=False)
class PowerSpec(_Options):
    """How the testbed switches a node on and off: a driver (``rpiaas.power.drivers``) and
    its options as the cluster file gives them (``power: {driver: snmp, host: ..., ...}``)."""

    driver: str
    options: tuple[tuple[str, Any], ...] = ()
    _named_by: ClassVar[str] = "driver"


@dataclass(frozen=True, slots=True, repr=False)
class MeterSpec(_Options):
    """What meters a node's power: a source (``rpiaas.power.meters``) and its options as the
    cluster file gives them (``meter: {source: hwmon, ...}``)."""

    source: str
    options: tuple[tuple[str, Any], ...] = ()
    _named_by: ClassVar[str] = "source"


# the options of power drivers and meters that hold a credential: never shown (the specs' repr
# hides them, and drivers redact them from their errors)
SECRET_OPTIONS = frozenset({"community", "auth_key", "priv_key", "password"})



@dataclass(frozen=True, slots=True)  # slots: a million nodes in a few hundred bytes each
class Node:
    """One machine of the cluster, as the original RPiaaS config describes it.

    Its address is ``prefix.suffix`` and its name ``hostname.domain``.
    """

    index: int
    hostname: str
    domain: str
    type: NodeType
    address: str | None = None
    hwaddr: str | None = None
    serial: str | None = None
    line: int | None = None  # where it was declared, for error messages
    power: PowerSpec | None = None  # how the testbed switches it (None: emulated)
    meter: MeterSpec | None = None  # what meters its power (None: modelled from utilisation)

    @property
    def name(self) -> str:
        """The node's unique name, ``hostname.domain`` (or the bare hostname)."""
        return f"{self.hostname}.{self.domain}" if self.domain else self.hostname


@dataclass(frozen=True)
class Cluster:
    """A group of nodes sharing a DNS domain and an IPv4 prefix."""

    domain: str
    prefix: str
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class ClusterSpec:
    """The whole testbed: the interface the master serves on and its clusters."""

    clusters: tuple[Cluster, ...]
    node_types: dict[str, NodeType] = field(default_factory=dict)
    interface: str | None = None
    master: tuple[Node, ...] = ()  # entries without a node type (the master itself)

    @functools.cached_property
    def nodes(self) -> tuple[Node, ...]:
        """Every compute node, in declaration order (their ``index`` order)."""
        return tuple(n for c in self.clusters for n in c.nodes)


class TaskState(str, enum.Enum):
    """Where a task is in its life; the final ones end it."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"
    KILLED = "killed"


class PowerState(enum.IntEnum):
    """A node's power state as the control plane sees it."""

    OFF = 0
    BOOTING = 1
    ON = 2
    DOWN = 3  # failed or unreachable; not under the policy's control


_ON = int(PowerState.ON)
_BOOTING = int(PowerState.BOOTING)


_T = TypeVar("_T")

# the fields of a Task that most tasks leave at their default, kept together in one slot
# (a dict made when the first of them is set): a task of a long run costs 17 slots, not 29
RARE_DEFAULTS: dict[str, Any] = {
    "command": None, "env": (), "priority": 0, "after": (), "parts": (), "procs": 0, "placed": (),
    "reason": "", "cpu_s": None, "peak_mem_mb": None, "image": None, "network": False, "pull_s": None,
}


class _Rare(Generic[_T]):
    """An attribute of :class:`Task` kept in its ``rare`` dict, ``RARE_DEFAULTS[name]`` while unset."""

    __slots__ = ("default", "doc", "name")

    def __init__(self, doc: str) -> None:
        self.doc = doc
        self.name = ""
        self.default: Any = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.default = RARE_DEFAULTS[name]

    @overload
    def __get__(self, obj: None, owner: type) -> _Rare[_T]: ...
    @overload
    def __get__(self, obj: Task, owner: type) -> _T: ...

    def __get__(self, obj: Task | None, owner: type) -> Any:
        if obj is None:
            return self
        rare = obj.rare
        return self.default if rare is None else rare.get(self.name, self.default)

    def __set__(self, obj: Task, value: _T) -> None:
        obj.set_rare(self.name, value, self.default)


class Task:
    """A unit of work.  The first fields are the input; the rest is its life.

    ``walltime_s`` is the user's runtime estimate (as in batch traces); when
    absent, policies that need an estimate use the exact runtime on the node.

    The arguments, in this order (the first five positional as well as by name): ``id``,
    ``arrival_s``, ``cores``, ``mem_mb``, ``work_core_s``, ``kind``, ``command``, ``env``,
    ``tenant``, ``priority``, ``after``, ``walltime_s``, ``nodes``, ``parts``, ``procs``,
    ``placed``, then the life: ``state``, ``node``, ``start_s``, ``end_s``, ``est_end_s``,
    ``attempts``, ``epoch``, ``reason``, ``cpu_s``, ``peak_mem_mb``, then ``image`` and
    ``network`` (a container task's).  Those most tasks leave at their default (``command``,
    ``env``, ``priority``, ``after``, ``parts``, ``procs``, ``placed``, ``reason``, ``cpu_s``,
    ``peak_mem_mb``, ``image``, ``network``) share one slot: read and set them as any attribute.
    """

    __slots__ = (
        "arrival_s",
        "attempts",
        "cores",
        "end_s",
        "epoch",
        "est_end_s",
        "id",
        "kind",
        "mem_mb",
        "node",
        "nodes",
        "rare",
        "start_s",
        "state",
        "tenant",
        "walltime_s",
        "work_core_s",
    )

    id: int
    arrival_s: float
    cores: int
    mem_mb: int
    work_core_s: float
    kind: str
    tenant: str
    walltime_s: float | None
    nodes: int  # nodes a parallel (rigid) job spans: one part per node; 1 is a task on one node
    # life, filled in by the control plane
    state: TaskState
    node: int
    start_s: float
    end_s: float
    est_end_s: float
    attempts: int  # starts so far (retries count; a start that never reached its node does not)
    epoch: int  # bumped on every start, move, kill or failure: stale shell events are dropped
    # the fields below that were set, by name (None: none was): read them as attributes; this
    # dict is for a reader of every task at once (the row writer), which takes the defaults
    # (RARE_DEFAULTS) for the names it lacks
    rare: dict[str, Any] | None

    def __init__(
        self,
        id: int,
        arrival_s: float,
        cores: int,
        mem_mb: int,
        work_core_s: float,
        kind: str = "cpu",
        command: tuple[str, ...] | None = None,
        env: tuple[tuple[str, str], ...] = (),
        tenant: str = "",
        priority: int = 0,
        after: tuple[int, ...] = (),
        walltime_s: float | None = None,
        nodes: int = 1,
        parts: tuple[int, ...] = (),
        procs: int = 0,
        placed: tuple[int, ...] = (),
        state: TaskState = TaskState.QUEUED,
        node: int = -1,
        start_s: float = -1.0,
        end_s: float = -1.0,
        est_end_s: float = 0.0,
        attempts: int = 0,
        epoch: int = 0,
        reason: str = "",
        cpu_s: float | None = None,
        peak_mem_mb: float | None = None,
        image: str | None = None,
        network: bool = False,
    ) -> None:
        self.id = id
        self.arrival_s = arrival_s
        self.cores = cores
        self.mem_mb = mem_mb
        self.work_core_s = work_core_s
        self.kind = kind
        self.tenant = tenant
        self.walltime_s = walltime_s
        self.nodes = nodes
        self.state = state
        self.node = node
        self.start_s = start_s
        self.end_s = end_s
        self.est_end_s = est_end_s
        self.attempts = attempts
        self.epoch = epoch
        self.rare = None
        if (command is not None or env or priority or after or parts or procs or placed or reason
                or cpu_s is not None or peak_mem_mb is not None or image is not None or network):
            self.command = command
            self.env = env
            self.priority = priority
            self.after = after
            self.parts = parts
            self.procs = procs
            self.placed = placed
            self.reason = reason
            self.cpu_s = cpu_s
            self.peak_mem_mb = peak_mem_mb
            self.image = image
            self.network = network

    command: _Rare[tuple[str, ...] | None] = _Rare("a program to run live (argv); modelled by work_core_s")
    env: _Rare[tuple[tuple[str, str], ...]] = _Rare("the command's extra environment, as (name, value) pairs")
    priority: _Rare[int] = _Rare("the task's priority (higher first, for the policies that read it)")
    after: _Rare[tuple[int, ...]] = _Rare("ids of the tasks it waits for (a workflow): released when "
                                            "all completed")
    parts: _Rare[tuple[int, ...]] = _Rare("a job's cores per part, largest first; () is ``cores`` on each node")
    procs: _Rare[int] = _Rare("processes a job's work is split over (``procs: N``); 0: the cores of its parts")
    placed: _Rare[tuple[int, ...]] = _Rare("the nodes of a started job, part by part (``node`` is the first)")
    reason: _Rare[str] = _Rare("why it failed or was killed (exit status, node lost, walltime, policy)")
    cpu_s: _Rare[float | None] = _Rare("measured CPU seconds (live); None where not measured")
    peak_mem_mb: _Rare[float | None] = _Rare("measured peak memory (live); None where not measured")
    image: _Rare[str | None] = _Rare("the OCI image a ``container`` task runs (``name:tag``)")
    network: _Rare[bool] = _Rare("whether a ``container`` task gets a network (it has none by default)")
    pull_s: _Rare[float | None] = _Rare("seconds its image took to pull before it ran (modelled in "
                                        "simulation, measured live); None: no image was pulled")

    def set_rare(self, name: str, value: Any, default: Any) -> None:
        """Set one of the fields that share one slot (no dict is made for a default)."""
        rare = self.rare
        if rare is None:
            if value == default and type(value) is type(default):
                return
            rare = self.rare = {}
        rare[name] = value

    def __repr__(self) -> str:
        names = ("id", "arrival_s", "cores", "mem_mb", "work_core_s", "kind", "command", "env", "tenant",
                 "priority", "after", "walltime_s", "nodes", "parts", "procs", "placed", "state", "node",
                 "start_s", "end_s", "est_end_s", "attempts", "epoch", "reason", "cpu_s", "peak_mem_mb",
                 "image", "network", "pull_s")
        return "Task(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in names) + ")"


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer of a container image: its id (a digest or any name) and size in MB."""

    id: str
    size_mb: float


@dataclass(frozen=True)
class Image:
    """A container image a ``container`` task runs: its layers, in order.  A layer two images
    share (the same ``id``) is pulled and cached once on a node."""

    name: str
    layers: tuple[Layer, ...]

    @property
    def size_mb(self) -> float:
        """The image's size: the sum of its layers'."""
        return sum(layer.size_mb for layer in self.layers)


# ---------------------------------------------------------------- parallel jobs
def part_cores(task: Task) -> tuple[int, ...]:
    """The cores of each part of ``task``: one part per node, the largest first (a task on one
    node is a job of one part)."""
    return task.parts or (task.cores,) * task.nodes


def job_cores(task: Task) -> int:
    """The cores a job's work is split over: its ``procs`` if it gives them, else the cores of
    all its parts (``cores`` for a task on one node)."""
    return task.procs or sum(part_cores(task))


def job_runtime_s(types: Sequence[NodeType], work_core_s: float, cores: int) -> float:
    """How long a job of ``work_core_s`` split over ``cores`` cores runs on nodes of ``types``
    (one per part): as a rigid MPI job does, at its slowest part's pace, each part's type
    asked by :meth:`NodeType.runtime_s` for the whole job's work on all its cores (once per
    type: the nodes of a type share its object)."""
    return max(t.runtime_s(work_core_s, cores) for t in {id(t): t for t in types}.values())


def job_end_s(types: Sequence[NodeType], start_s: float, work_core_s: float, cores: int) -> float:
    """When such a job started at ``start_s`` ends: :meth:`NodeType.end_s` of its slowest part
    (asked once per type, as :func:`job_runtime_s` does)."""
    return max(t.end_s(start_s, work_core_s, cores) for t in {id(t): t for t in types}.values())
