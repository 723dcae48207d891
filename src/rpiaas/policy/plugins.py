"""Finding policies and wiring them into a pluggy plugin manager.

Built-in policies are registered from a tuple; third-party ones come from
the entry-point group ``rpiaas.policies`` (each entry point names a
:class:`~rpiaas.policy.Policy` subclass).  A built-in's name is the built-in
policy, found without looking at the installed packages (a package cannot take
it: :func:`available_policies` refuses the clash); any other name loads the
entry points.  There is no global manager: :func:`get_plugin_manager` builds
one per run.
"""

from __future__ import annotations

import functools
import inspect
import os
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from ..inputs.errors import did_you_mean
from . import hookspecs
from .base import Policy

__all__ = [
    "ENTRY_POINT_GROUP",
    "HookCall",
    "PolicyInfo",
    "UnknownPolicyError",
    "available_policies",
    "builtin_policies",
    "distribution_version",
    "get_plugin_manager",
    "get_policy",
    "locate_failure",
]

ENTRY_POINT_GROUP = "rpiaas.policies"


@dataclass(frozen=True)
class PolicyInfo:
    """A policy class and where it comes from (``builtin`` or a distribution)."""

    name: str
    cls: type[Policy]
    origin: str
    version: str = ""  # the distribution's version (rpiaas's own for the built-ins)

    @property
    def summary(self) -> str:
        return self.cls.summary()

    def describe(self) -> dict[str, Any]:
        """The policy as data: name, kinds, summary, origin, version and parameters (each with
        its default, or ``required``), JSON-ready."""
        params: dict[str, Any] = {}
        for key, p in self.cls.parameters().items():
            default = p.default
            if default is inspect.Parameter.empty:
                params[key] = {"required": True}
            else:
                ok = default is None or isinstance(default, (bool, int, float, str))
                params[key] = {"default": default if ok else repr(default)}
        return {"name": self.name, "kinds": list(self.cls.kinds()), "summary": self.summary,
                "origin": self.origin, "version": self.version, "params": params}


class UnknownPolicyError(LookupError):
    """No policy of that name is built in or installed."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown policy {name!r}{did_you_mean(name, known)} (known: {', '.join(known)})")
        self.name = name


def builtin_policies() -> dict[str, PolicyInfo]:
    """The built-in policies by name, in :data:`~rpiaas.policy.builtin.BUILTIN_POLICIES` order;
    no installed package is looked at."""
    from .builtin import BUILTIN_POLICIES  # here: a control plane given its policies needs none

    version = distribution_version("rpiaas") or ""  # "": run from a checkout that is not installed
    return {cls.NAME: PolicyInfo(cls.NAME, cls, "builtin", version) for cls in BUILTIN_POLICIES}


def available_policies(broken: dict[str, str] | None = None) -> dict[str, PolicyInfo]:
    """Every policy by name: built-ins first, then installed entry points.

    A third-party entry point that fails to load raises, unless ``broken`` is
    given: then it is recorded there (name -> message) and the others are
    still returned, so one broken package does not hide the rest.
    """
    from importlib.metadata import entry_points

    found = builtin_policies()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        origin = ep.dist.name if ep.dist is not None else "entry point"
        version = ep.dist.version if ep.dist is not None else ""
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Policy)):
                raise TypeError(f"policy entry point {ep.name!r} ({ep.value}) is not a rpiaas Policy class")
            name = cls.NAME or ep.name
            if name in found:
                raise ValueError(f"policy name {name!r} of {origin} is already taken by {found[name].origin}")
        except Exception as e:
            message = str(e) if isinstance(e, (TypeError, ValueError)) and str(e).startswith("policy") \
                else f"policy entry point {ep.name!r} ({ep.value}) failed to load: {e}"
            if broken is None:
                raise (ImportError if not isinstance(e, (TypeError, ValueError)) else type(e))(message) from e
            broken[ep.name] = message
            continue
        found[name] = PolicyInfo(name, cls, origin, version)
    return found


@functools.cache
def distribution_version(name: str) -> str | None:
    """The version of the installed distribution ``name``, or ``None`` if it is not installed;
    looked up once per process (each lookup searches the path and parses the package's metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def get_policy(name: str, broken: dict[str, str] | None = None) -> PolicyInfo:
    """Look a policy up by name; raises :class:`UnknownPolicyError`.

    A built-in's name is the built-in policy, found without loading any entry point; any
    other name is looked for among the installed ones (:func:`available_policies`: one
    that fails to load raises, unless ``broken`` is given to record it in).
    """
    builtin = builtin_policies().get(name)
    if builtin is not None:
        return builtin
    policies = available_policies(broken)
    if name not in policies:
        raise UnknownPolicyError(name, sorted(policies))
    return policies[name]


def get_plugin_manager(policies: Sequence[Policy] = ()) -> pluggy.PluginManager:
    """A fresh plugin manager with the hook specs and the given policy instances.

    Later policies in ``policies`` are asked first (pluggy calls the most
    recently registered implementation first).
    """
    pm = pluggy.PluginManager("rpiaas")
    pm.add_hookspecs(hookspecs)
    for policy in policies:
        if isinstance(policy, Policy):
            type(policy).declared_index_rule()  # a misspelt index_rule fails here, used or not
        pm.register(policy, name=f"{type(policy).NAME or type(policy).__name__}#{id(policy)}")
    pm.check_pending()
    return pm


def locate_failure(pm: pluggy.PluginManager, exc: BaseException) -> str | None:
    """One line saying which policy's hook raised ``exc``, where, and for which task.

    ``None`` if no hook implementation registered in ``pm`` is on the traceback
    (the error is not a policy's).  Found from the traceback after the fact, so
    the hot path pays nothing for it.
    """
    hooks: dict[Any, tuple[str, str]] = {}  # code object -> (policy name, hook name)
    for name, caller in vars(pm.hook).items():
        for impl in caller.get_hookimpls() if hasattr(caller, "get_hookimpls") else ():
            code = getattr(impl.function, "__code__", None)
            if code is not None:
                hooks[code] = (getattr(impl.plugin, "NAME", "") or type(impl.plugin).__name__, name)
    libraries = tuple({sysconfig.get_path(k) for k in ("stdlib", "purelib", "platlib")})
    found: tuple[str, str] | None = None
    task: Any = None
    where = ""
    own = ""  # the file of the hook implementation
    tb = exc.__traceback__
    while tb is not None:
        frame, code = tb.tb_frame, tb.tb_frame.f_code
        if found is None:
            task = frame.f_locals.get("task", task)  # the task the control plane was deciding
            if code in hooks:
                found, own = hooks[code], code.co_filename
        if found is not None and (code.co_filename == own or
                                  not code.co_filename.startswith(libraries)):
            # the deepest line of the policy's own code (not numpy's, not the stdlib's)
            where = f"{os.path.basename(code.co_filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    if found is None:
        return None
    policy, hook = found
    message = " ".join(str(exc).split()) or "(no message)"
    if len(message) > 200:
        message = message[:200] + "..."
    what = f" for task {task.id}" if hasattr(task, "id") and hasattr(task, "arrival_s") else ""
    return (f"policy {policy!r} raised {type(exc).__name__}: {message} in {hook}"
            f"{f' ({where})' if where else ''}{what}")


class HookCall:
    """One hook, resolved once per run for the hot path.

    Calls the implementations directly, in pluggy's order and with pluggy's
    argument selection, when none is a wrapper; otherwise goes through pluggy.
    ``implemented`` is false when no policy implements the hook.
    """

    __slots__ = ("_direct", "_funcs", "_hook", "firstresult", "implemented", "name")

    def __init__(self, pm: pluggy.PluginManager, name: str) -> None:
        self.name = name
        self._hook = getattr(pm.hook, name)
        impls = self._hook.get_hookimpls()
        self.implemented = bool(impls)
        opts = self._hook.spec.opts if self._hook.spec else {}
        self.firstresult = bool(opts.get("firstresult"))
        self._direct = not any(i.hookwrapper or i.wrapper for i in impls)
        # pluggy calls the last registered first
        self._funcs: list[tuple[Callable[..., Any], tuple[str, ...]]] = [
            (i.function, tuple(i.argnames)) for i in reversed(impls)
        ]

    def first(self, **kwargs: Any) -> Any:
        """First non-None result (for firstresult hooks)."""
        if not self._direct:
            return self._hook(**kwargs)
        for func, names in self._funcs:
            res = func(*[kwargs[n] for n in names])
            if res is not None:
                return res
        return None

    def caller(self, *names: str) -> Callable[..., Any]:
        """:meth:`first` taking its arguments by position, in the order ``names``.

        The implementation itself when it is the only one, not a wrapper, and
        takes exactly these arguments in this order: no per-call dict or list.
        """
        if self._direct and len(self._funcs) == 1 and self._funcs[0][1] == names:
            return self._funcs[0][0]

        def call(*args: Any) -> Any:
            return self.first(**dict(zip(names, args, strict=True)))

        return call

    def all(self, **kwargs: Any) -> list[Any]:
        """All non-None results, in call order."""
        if not self._direct:
            res = self._hook(**kwargs)
            return [r for r in res if r is not None] if isinstance(res, list) else []
        out = []
        for func, names in self._funcs:
            r = func(*[kwargs[n] for n in names])
            if r is not None:
                out.append(r)
        return out
