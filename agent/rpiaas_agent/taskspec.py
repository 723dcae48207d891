"""What a ``POST /tasks`` body may say: :func:`parse_task_request` checks it into a :class:`TaskSpec`.

The checks are at least as strict as the ``TaskRequest`` schema of
:mod:`rpiaas_agent.openapi` (what the schema refuses, this refuses too), and
add the node's own limits: no more cores or memory than the node has.  Each
refusal is a :class:`BadTaskRequest` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Union
from urllib.parse import urlsplit

__all__ = ["ENV_NAME_PATTERN", "ID_PATTERN", "IMAGE_PATTERN", "KINDS", "LIMITS", "BadTaskRequest", "TaskSpec",
           "parse_task_request"]

KINDS = ("cpu", "memory", "io", "sleep", "command", "container")
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
_ID = re.compile(ID_PATTERN)
# a command's environment: names of letters, digits and _, never the agent's own settings
ENV_NAME_PATTERN = r"^(?!RPIAAS_AGENT_)[A-Za-z_][A-Za-z0-9_]{0,127}$"
_ENV_NAME = re.compile(ENV_NAME_PATTERN)
# an OCI image reference: [registry[:port]/]name[:tag][@digest]
IMAGE_PATTERN = r"^[a-z0-9][A-Za-z0-9._/:@+-]{0,254}$"
_IMAGE = re.compile(IMAGE_PATTERN)

MAX_DURATION_S = 30 * 86400.0  # longer is a mistake, not an experiment
# Bounds of the API whatever the node; the node's own capacity is checked too.
LIMITS: dict[str, float] = {
    "cores": 4096,
    "mem_mb": float(1 << 24),  # 16 TiB
    "io_mb": float(1 << 20),  # 1 TiB
    "duration_s": MAX_DURATION_S,
    "work_core_s": MAX_DURATION_S * 4096,
    "argv_items": 256,
    "argv_chars": 4096,
    "env_items": 64,
    "env_chars": 4096,
    "url_chars": 2048,
}
COMMON = ("id", "kind", "cores", "mem_mb", "notify_url")
FIELDS: dict[str, tuple[str, ...]] = {  # the fields each kind takes besides COMMON
    "cpu": ("work_core_s",),
    "memory": ("duration_s",),
    "io": ("duration_s", "io_mb"),
    "sleep": ("duration_s",),
    "command": ("argv", "env"),
    "container": ("image", "argv", "env", "network", "work_core_s"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "cpu": ("work_core_s",),
    "memory": ("duration_s", "mem_mb"),
    "io": ("duration_s", "io_mb"),
    "sleep": ("duration_s",),
    "command": ("argv",),
    "container": ("image",),
}

Number = Union[int, float]


class BadTaskRequest(ValueError):
    """The request cannot be a task; the message starts with the field at fault."""


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A checked task request (see ``docs/testbed.md``, "Workloads")."""

    id: str
    kind: str
    cores: int = 1
    mem_mb: Number = 0
    work_core_s: float | None = None
    duration_s: float | None = None
    io_mb: float | None = None
    argv: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()  # a command's extra environment
    image: str | None = None  # a container task's image
    network: bool = False  # whether a container task has a network
    notify_url: str | None = None


def _number(name: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> Number:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and not math.isfinite(value)):
        raise BadTaskRequest(f"{name}: expected a number, got {value!r}")
    if value < lo or (lo_open and value == lo) or value > hi:
        low = f"more than {lo:g}" if lo_open else f"at least {lo:g}"
        raise BadTaskRequest(f"{name}: expected {low} and at most {hi:g}, got {value!r}")
    return value


def _url(value: Any) -> str:
    what = "notify_url: expected an http:// or https:// URL"
    if not isinstance(value, str) or len(value) > LIMITS["url_chars"] or not value.isprintable() \
            or any(c.isspace() for c in value):
        raise BadTaskRequest(f"{what} of at most {LIMITS['url_chars']:g} characters, got {value!r}")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a bad port
    except ValueError:
        raise BadTaskRequest(f"{what}, got {value!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None \
            or port == 0:
        raise BadTaskRequest(f"{what} with a host and no user, got {value!r}")
    return value


def _argv(value: Any) -> tuple[str, ...]:
    n, chars = int(LIMITS["argv_items"]), int(LIMITS["argv_chars"])
    if not isinstance(value, list) or not 1 <= len(value) <= n:
        raise BadTaskRequest(f"argv: expected a list of 1 to {n} strings, got {value!r}")
    for i, arg in enumerate(value):
        if not isinstance(arg, str) or not 1 <= len(arg) <= chars or "\x00" in arg:
            raise BadTaskRequest(f"argv[{i}]: expected a string of 1 to {chars} characters "
                                 f"without NUL, got {arg!r}")
    return tuple(value)


def _env(value: Any) -> tuple[tuple[str, str], ...]:
    n, chars = int(LIMITS["env_items"]), int(LIMITS["env_chars"])
    if not isinstance(value, dict) or len(value) > n:
        raise BadTaskRequest(f"env: expected an object of at most {n} variables")
    out = []
    for name, text in value.items():
        if not _ENV_NAME.fullmatch(name):  # (JSON object keys are strings)
            raise BadTaskRequest(f"env: {name!r} is not a variable name a task may set (letters, "
                                 "digits and _, not starting with a digit nor RPIAAS_AGENT_)")
        # the value is never shown: it may be a secret
        if not isinstance(text, str) or len(text) > chars or "\x00" in text:
            raise BadTaskRequest(f"env.{name}: expected a string of at most {chars} characters "
                                 "without NUL")
        out.append((name, text))
    return tuple(out)


def parse_task_request(body: Any, node_cores: int, node_mem_mb: float) -> TaskSpec:
    """The task that ``body`` (decoded JSON) asks for, on a node of this capacity.

    :raises BadTaskRequest: naming the first field at fault: missing, unknown,
        of the wrong type, out of range, or more than the node has.
    """
    if not isinstance(body, dict):
        raise BadTaskRequest(f"body: expected a JSON object, got {type(body).__name__}")
    kind = body.get("kind")
    if kind not in KINDS:
        got = "nothing" if "kind" not in body else repr(kind)
        raise BadTaskRequest(f"kind: expected one of {', '.join(KINDS)}, got {got}")
    allowed = COMMON + FIELDS[kind]
    for name in body:
        if name not in allowed:
            raise BadTaskRequest(f"{name}: not a field of a {kind} task "
                                 f"(its fields: {', '.join(allowed)})")
    for name in ("id", *REQUIRED[kind]):
        if name not in body:
            raise BadTaskRequest(f"{name}: missing (a {kind} task needs {', '.join(REQUIRED[kind])})")
    task_id = body["id"]
    if not isinstance(task_id, str) or not _ID.fullmatch(task_id):
        raise BadTaskRequest(f"id: expected 1 to 128 of the characters A-Z a-z 0-9 . _ : -, "
                             f"got {task_id!r}")
    values: dict[str, Any] = {"id": task_id, "kind": kind}
    if "cores" in body:
        cores = body["cores"]
        if isinstance(cores, bool) or not isinstance(cores, int):
            raise BadTaskRequest(f"cores: expected an integer, got {cores!r}")
        _number("cores", cores, 1, LIMITS["cores"])
        if cores > node_cores:
            raise BadTaskRequest(f"cores: {cores} is more than this node's {node_cores}")
        values["cores"] = cores
    if "mem_mb" in body:
        mem = _number("mem_mb", body["mem_mb"], 0, LIMITS["mem_mb"], lo_open=kind == "memory")
        if mem > node_mem_mb:
            raise BadTaskRequest(f"mem_mb: {mem:g} is more than this node's {node_mem_mb:g}")
        values["mem_mb"] = mem
    for name in ("work_core_s", "duration_s", "io_mb"):
        if name in body:
            values[name] = float(_number(name, body[name], 0, LIMITS[name], lo_open=True))
    if kind == "cpu" and values["work_core_s"] > MAX_DURATION_S * values.get("cores", 1):
        raise BadTaskRequest(f"work_core_s: more than {MAX_DURATION_S:g} s on each of its cores")
    if "argv" in body:
        values["argv"] = _argv(body["argv"])
    if "env" in body:
        values["env"] = _env(body["env"])
    if "image" in body:
        image = body["image"]
        if not isinstance(image, str) or not _IMAGE.fullmatch(image):
            raise BadTaskRequest(f"image: expected an image reference such as debian:bookworm "
                                 f"(letters, digits, . _ - / : @), got {image!r}")
        values["image"] = image
    if "network" in body:
        if not isinstance(body["network"], bool):
            raise BadTaskRequest(f"network: expected true or false, got {body['network']!r}")
        values["network"] = body["network"]
    if "notify_url" in body:
        values["notify_url"] = _url(body["notify_url"])
    return TaskSpec(**values)
