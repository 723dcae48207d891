"""What a policy is: a named class of hook implementations with parameters.

A policy subclasses :class:`Policy`, sets ``NAME`` (used in scenario files)
and implements some of the hooks of :mod:`rpiaas.policy.hookspecs` as methods marked
with :data:`hookimpl`.  Its constructor's keyword arguments are its
parameters, filled from the scenario's ``policy.params``; a parameter named
``rng`` receives the run's policy random generator instead.

This module also defines the small values hooks return: :class:`Reservation`,
:data:`SKIP` and :class:`PowerPlan`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pluggy

__all__ = ["INDEX_RULES", "SKIP", "Policy", "PolicyError", "PolicyParamError", "PowerPlan", "Reservation",
           "hookimpl", "job_nodes"]

hookimpl = pluggy.HookimplMarker("rpiaas")

INDEX_RULES = ("tightest", "loosest")
"""The free-index searches a policy may declare as its placement (:attr:`Policy.index_rule`)."""


_KINDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("placement", frozenset({"rpiaas_place", "rpiaas_filter", "rpiaas_score"})),
    ("queue", frozenset({"rpiaas_admit", "rpiaas_queue_order", "rpiaas_blocked"})),
    ("rebalance", frozenset({"rpiaas_rebalance"})),
    ("power", frozenset({"rpiaas_power"})),
    ("notify", frozenset({"rpiaas_notify"})),
)


class Policy:
    """Base class of policies.  Subclasses set ``NAME`` and implement hooks.

    The first line of the class docstring is the one-line summary shown by
    ``rpiaas policies``.
    """

    NAME: ClassVar[str] = ""
    #: What the policy decides, where its hooks do not say it (:meth:`kinds`): ``fcfs``
    #: implements no hook (it is the control plane's own order) and is a queue policy.
    KINDS: ClassVar[tuple[str, ...] | None] = None
    #: The free-index search this policy's ``rpiaas_place`` answers with, declared so that
    #: the control plane asks its index directly instead of calling the hook: ``"tightest"``
    #: (:meth:`FreeCoresIndex.tightest <rpiaas.core.ledger.FreeCoresIndex.tightest>`, best
    #: fit) or ``"loosest"`` (worst fit); ``None``: no such promise.  It holds for the
    #: ``rpiaas_place`` of the class that declares it: a subclass that overrides the hook
    #: declares again.  ``rpiaas.core.check_index_rule`` checks a declaration.
    index_rule: ClassVar[str | None] = None
    #: Whether this policy's ``rpiaas_blocked`` answers :data:`SKIP` whenever it is given a
    #: ``reservation`` (only the first reservation of a pass is kept, as in EASY backfilling),
    #: declared so that the control plane does not ask it for the rest of a pass once a
    #: reservation is held.  It holds for the ``rpiaas_blocked`` of the class that declares
    #: it, as :attr:`index_rule` does for ``rpiaas_place``.
    skips_when_reserved: ClassVar[bool] = False
    #: Whether this policy's hooks may read, during a step, the view's arrays that follow the
    #: reservations (``cores_free``, ``mem_free_mb``, ``tasks``, ``utilization``).  A queue
    #: policy that reads none of them (``easy_backfill`` asks ``view.room_times``, which
    #: reads the ledger) declares ``False``, so that, with a placement from the free index
    #: (:attr:`index_rule`), reservations write the ledger's lists alone and the arrays
    #: catch up when read.  What a hook sees is the same either way: a wrong ``False``
    #: costs time (the arrays brought up to date at each read), never a result.
    reads_arrays: ClassVar[bool] = True

    @classmethod
    def _declares_for(cls, hook: str, attr: str) -> bool:
        """Whether ``attr`` is declared in the class that defines ``hook`` or in a subclass of it."""
        hook_owner = next((c for c in cls.__mro__ if hook in vars(c)), None)
        attr_owner = next((c for c in cls.__mro__ if attr in vars(c)), None)
        return hook_owner is not None and attr_owner is not None and issubclass(attr_owner, hook_owner)

    @classmethod
    def declared_skips_when_reserved(cls) -> bool:
        """:attr:`skips_when_reserved` if it covers the class's ``rpiaas_blocked``; else ``False``."""
        return cls._declares_for("rpiaas_blocked", "skips_when_reserved") and bool(cls.skips_when_reserved)

    @classmethod
    def declared_index_rule(cls) -> str | None:
        """:attr:`index_rule` if it covers the class's ``rpiaas_place`` (declared in the class
        that defines the hook, or in a subclass of it); else ``None``."""
        if not cls._declares_for("rpiaas_place", "index_rule"):
            return None
        rule = cls.index_rule
        if rule is not None and rule not in INDEX_RULES:
            raise PolicyError(f"policy {cls.NAME or cls.__name__!r}: index_rule {rule!r} is not one "
                             f"of {', '.join(map(repr, INDEX_RULES))}")
        return rule

    @classmethod
    def kinds(cls) -> tuple[str, ...]:
        """What the policy decides, from the hooks it implements: ``placement`` (place, filter,
        score), ``queue`` (admit, queue order, blocked), ``rebalance``, ``power``, ``notify``."""
        if cls.KINDS is not None:
            return cls.KINDS
        hooks = {name for c in cls.__mro__ if c is not Policy for name in vars(c)
                 if name.startswith("rpiaas_")}
        return tuple(kind for kind, names in _KINDS if hooks & names)

    @classmethod
    def summary(cls) -> str:
        doc = inspect.getdoc(cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @classmethod
    def parameters(cls) -> dict[str, inspect.Parameter]:
        """The policy's parameters (constructor keywords), without ``rng``."""
        sig = inspect.signature(cls.__init__)
        kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return {
            name: p
            for name, p in sig.parameters.items()
            if name not in ("self", "rng") and p.kind in kinds
        }

    @classmethod
    def create(cls, params: dict[str, Any], rng: Any = None) -> Policy:
        """Instantiate with ``params``; raises :class:`PolicyParamError` naming a bad key."""
        known = cls.parameters()
        for key in params:
            if key not in known:
                hint = ", ".join(sorted(known)) or "none"
                raise PolicyParamError(key, f"unknown parameter of policy {cls.NAME!r} (known: {hint})")
        for key, p in known.items():
            if key in params and p.default is not inspect.Parameter.empty and p.default is not None:
                want = type(p.default)
                got = params[key]
                if want is float and isinstance(got, int) and not isinstance(got, bool):
                    params = {**params, key: float(got)}
                elif not isinstance(got, want) or (want is not bool and isinstance(got, bool)):
                    raise PolicyParamError(key, f"expected {want.__name__}, got {got!r}")
        kwargs = dict(params)
        if "rng" in inspect.signature(cls.__init__).parameters:
            kwargs["rng"] = rng
        try:
            return cls(**kwargs)
        except PolicyParamError:
            raise
        except ValueError as e:
            raise PolicyParamError("", str(e)) from None


def job_nodes(task: Any, ranked: Any) -> list[int] | None:
    """A parallel job's nodes: the first ``task.nodes`` of ``ranked`` (node indices with room
    for a part, best first) as a list, the answer ``rpiaas_place`` gives for a job; ``None``
    when there are fewer."""
    k = task.nodes
    if len(ranked) < k:
        return None
    return [int(n) for n in ranked[:k]]


class PolicyParamError(ValueError):
    """A policy parameter is unknown or invalid; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass(frozen=True)
class Reservation:
    """A promise to a blocked task: node ``node`` will be kept for it from ``start_s``.

    While the reservation holds, the control plane starts a later task on
    ``node`` only if its estimated end is before ``start_s`` or the node
    still has room for the blocked task at ``start_s`` (EASY backfilling).
    For a parallel job ``nodes`` lists every node that has room for a part by ``start_s``
    (``node`` the first); the job needs ``task.nodes`` of them, so a later task may still take
    as many of them as are spare (EASY's extra nodes), and the rest are kept as above.
    """

    node: int
    start_s: float
    nodes: tuple[int, ...] = ()  # for a parallel job: every node with room for a part by start_s


class _Skip:
    __slots__ = ()

    def __repr__(self) -> str:
        return "SKIP"


SKIP: Any = _Skip()
"""Returned by ``rpiaas_blocked``: leave the blocked task waiting, try the next one."""


@dataclass
class PowerPlan:
    """Nodes to switch on and off, and when to be asked again."""

    on: list[int] = field(default_factory=list)
    off: list[int] = field(default_factory=list)
    wake_at_s: float | None = None


class PolicyError(RuntimeError):
    """A policy raised, or answered something the control plane cannot carry out.

    Raised from :meth:`ControlPlane.step` with the simulated time in the message;
    ``__cause__`` holds the policy's own exception when it raised one.
    """
