"""Where a container task's image comes from: the testbed's registry, and how an engine pulls from it.

A scenario names an image as ``name[:tag]`` (``image: stress:1``).  On a node
configured with the testbed's registry (``registry = "10.0.0.1:5000"``), a name
without a registry host of its own resolves to that registry
(``10.0.0.1:5000/stress:1``); a name with one (``quay.io/x/y``, ``localhost/y``)
is left as it is.  The testbed's registry speaks plain HTTP on the cluster
network, so a pull from it turns TLS verification off (podman:
``--tls-verify=false``; Docker takes no such flag, and needs the registry in
``insecure-registries`` of its ``daemon.json``).  A cached image is not pulled
again: :func:`image_cached` asks the engine first.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

__all__ = ["ENGINES", "cached_argv", "has_registry_host", "image_cached", "image_reference",
           "pull_argv", "registry_of"]

ENGINES = ("podman", "docker")


def has_registry_host(image: str) -> bool:
    """Whether ``image`` names its registry: a first component with a dot or a colon, or
    ``localhost`` (the rule of the OCI distribution reference, as podman and Docker read it)."""
    first, slash, _ = image.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def image_reference(image: str, registry: str | None) -> str:
    """The reference the engine pulls for a task's ``image``: from ``registry`` unless it names
    its own registry (or no registry is configured)."""
    if registry is None or has_registry_host(image):
        return image
    return f"{registry}/{image}"


def registry_of(reference: str) -> str | None:
    """The registry host of ``reference`` (HOST[:PORT]), None if it names none."""
    return reference.partition("/")[0] if has_registry_host(reference) else None


def _engine_name(engine: str) -> str:
    name = os.path.basename(engine)
    if name not in ENGINES:
        raise ValueError(f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    return name


def pull_argv(engine: str, reference: str, registry: str | None) -> list[str]:
    """The command pulling ``reference`` with ``engine`` (its path or name): over plain HTTP
    when it comes from the testbed's ``registry``."""
    argv = [engine, "pull"]
    if _engine_name(engine) == "podman":
        argv.append("--quiet")
        if registry is not None and registry_of(reference) == registry:
            argv.append("--tls-verify=false")
    return [*argv, reference]


def cached_argv(engine: str, reference: str) -> list[str]:
    """The command that exits 0 when ``engine`` holds ``reference`` already."""
    if _engine_name(engine) == "podman":
        return [engine, "image", "exists", reference]
    return [engine, "image", "inspect", "--format", "{{.Id}}", reference]


def image_cached(engine: str, reference: str, *, timeout_s: float = 30.0,
                 env: Sequence[tuple[str, str]] | None = None) -> bool:
    """Whether ``engine`` holds ``reference`` already (a task on it needs no pull)."""
    done = subprocess.run(cached_argv(engine, reference), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout_s,
                          env=dict(env) if env is not None else None)
    return done.returncode == 0
