"""Where a container task's image comes from: the testbed's registry, over plain HTTP.

A scenario names an image as ``name[:tag]`` (``image: stress:1``).  On a node
configured with the testbed's registry (``registry = "10.0.0.1:5000"``), a name
without a registry host of its own resolves to that registry
(``10.0.0.1:5000/stress:1``); a name with one (``quay.io/x/y``, ``localhost/y``)
is left as it is.  The testbed's registry speaks plain HTTP on the cluster
network, so a pull from it turns TLS verification off (podman's
``--tls-verify=false``, :meth:`rpiaas_agent.containers.Engine.pull`; Docker takes
no such flag, and needs the registry in ``insecure-registries`` of its
``daemon.json``), and a pull from anywhere else keeps it on.
"""

from __future__ import annotations

__all__ = ["has_registry_host", "image_reference", "plain_http", "registry_of"]


def has_registry_host(image: str) -> bool:
    """Whether ``image`` names its registry: a first component with a dot or a colon, or
    ``localhost`` (the rule of the OCI distribution reference, as podman and Docker read it)."""
    first, slash, _ = image.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def image_reference(image: str, registry: str | None) -> str:
    """The reference the engine pulls and runs for a task's ``image``: from ``registry`` unless
    it names its own registry (or no registry is configured)."""
    if registry is None or has_registry_host(image):
        return image
    return f"{registry}/{image}"


def registry_of(reference: str) -> str | None:
    """The registry host of ``reference`` (HOST[:PORT]), None if it names none."""
    return reference.partition("/")[0] if has_registry_host(reference) else None


def plain_http(reference: str, registry: str | None) -> bool:
    """Whether ``reference`` is pulled over plain HTTP: it comes from the testbed's ``registry``."""
    return registry is not None and registry_of(reference) == registry
