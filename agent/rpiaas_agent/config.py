"""The agent's configuration: defaults, then a file, then RPIAAS_AGENT_* variables, then flags.

Every setting has one name, used as the key in a file (``port``), in the
environment (``RPIAAS_AGENT_PORT``) and, with dashes, as a flag (``--port``).
A later source overrides an earlier one.  The token is the exception to
"flags": it never appears on a command line, where any local user could read
it; give it in the environment (``RPIAAS_AGENT_TOKEN``), a file (``token``) or
a separate file readable only by the agent (``token_file``).

A file is JSON (``*.json``) or TOML (anything else).  TOML is read with
:mod:`tomllib` (Python >= 3.11), else ``tomli`` if installed, else a small
built-in reader of flat ``key = value`` files (see :mod:`rpiaas_agent._toml`).

Bad input raises :class:`ConfigError`, with one line naming the source and key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import logging
import os
import socket
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import psutil

from .power import POWER_SOURCES

__all__ = ["ENV_PREFIX", "SETTINGS", "Config", "ConfigError", "load_config", "read_config_file"]

log = logging.getLogger(__name__)

ENV_PREFIX = "RPIAAS_AGENT_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"  # the file to read, when --config is not given
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """A setting is missing, unknown or has a bad value; the message names where."""


@dataclasses.dataclass(frozen=True)
class Config:
    """The agent's settings (see ``docs/testbed.md`` for each one)."""

    host: str = "0.0.0.0"  # the master polls the agent over the testbed network
    port: int = 8081  # the original RPiaaS agent's port
    name: str = ""  # the node's name in the cluster config; "" means the hostname
    token: str | None = dataclasses.field(default=None, repr=False)
    token_file: str | None = None
    disk_path: str = "/"
    sysfs_root: str = "/sys"  # where class/thermal lives; tests point it at a fake tree
    vcgencmd: str = "vcgencmd"  # command for throttling flags; "" turns them off
    sample_interval_s: float = 1.0
    throttle_interval_s: float = 5.0
    max_body_bytes: int = 64 * 1024
    log_level: str = "info"
    access_log: bool = False  # a line per request floods the journal at one poll a second
    # Workloads (/tasks): the node's capacity for tasks, and where they may write.
    cores: int | None = None  # None: as many as cpu_set has
    mem_mb: int | None = None  # None: the node's total memory, in MiB
    cpu_set: tuple[int, ...] | None = None  # None: the CPUs this process may run on
    allow_commands: bool = False  # `command` tasks run anything as the agent's user
    oversubscribe: bool = False  # cores may exceed cpu_set: tasks share CPUs (emulated nodes)
    work_dir: str = "/var/tmp"  # on disk, unlike a tmpfs /tmp: `io` tasks measure the disk
    max_finished_tasks: int = 256
    master_url: str | None = None  # where the agent reports its node's boot when it starts
    # the address its reports to the master come from (a local testbed's node on loopback
    # reports from its node's address, which the master checks); None: the system's choice
    report_from: str | None = None
    # A node emulated on a shared machine (local testbed): CPU and memory are its tasks' only,
    # against cores and mem_mb, not the host's (see rpiaas_agent.emulation).
    emulate: bool = False
    # The node's power read on the node itself (rpiaas_agent.power): none, hwmon or pmic.
    power_source: str = "none"
    hwmon_path: str = "/sys/class/hwmon"  # the hwmon class, or one device's directory
    power_interval_s: float = 1.0
    # The testbed's image registry (HOST:PORT, plain HTTP): a container task's image without a
    # registry host of its own is pulled from it (see rpiaas_agent.images).  None: as named.
    registry: str | None = None
    # Container tasks (rpiaas_agent.containers): the engine ("" looks for podman, then docker;
    # "none" turns them off) and its OCI runtime ("" the engine's default; runc works with cgroup v1)
    container_engine: str = ""
    container_runtime: str = "runc"

    @property
    def node_name(self) -> str:
        """The configured node name, or the hostname when none is configured."""
        return self.name or socket.gethostname()

    def public(self) -> dict[str, Any]:
        """The settings without the token, for ``GET /config`` and ``--print-config``."""
        out = dataclasses.asdict(self)
        del out["token"]
        out["token_set"] = self.token is not None
        return out


# ---------------------------------------------------------------- parsing single values
def _int(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(v: Any) -> int:
        if isinstance(v, str):
            with contextlib.suppress(ValueError):
                v = int(v.strip().replace("_", ""), 10)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"expected an integer from {lo} to {hi}, got {v!r}")
        return v
    return parse


def _seconds(lo: float, hi: float) -> Callable[[Any], float]:
    def parse(v: Any) -> float:
        if isinstance(v, str):
            with contextlib.suppress(ValueError):
                v = float(v.strip())
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise ValueError(f"expected a number of seconds from {lo:g} to {hi:g}, got {v!r}")
        return float(v)
    return parse


def _text(allow_empty: bool = False, max_len: int = 4096) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        if not isinstance(v, str) or (not v and not allow_empty) or len(v) > max_len \
                or not v.isprintable():
            what = "" if allow_empty else "not empty, "
            raise ValueError(f"expected a printable string ({what}at most {max_len} characters), "
                             f"got {v!r}")
        return v
    return parse


def _http_url(v: Any) -> str:
    if not isinstance(v, str) or not v.startswith(("http://", "https://")) or " " in v \
            or len(v) > 2048 or not v.isprintable():
        raise ValueError(f"expected an http:// or https:// URL, got {v!r}")
    return v.rstrip("/")


def _ip_address(v: Any) -> str:
    try:
        return str(ipaddress.ip_address(v.strip() if isinstance(v, str) else v))
    except ValueError:
        raise ValueError(f"expected an IP address, got {v!r}") from None


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(v, str) and v.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {v!r}")


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        if isinstance(v, str) and v.strip().lower() in options:
            return v.strip().lower()
        raise ValueError(f"expected one of {', '.join(options)}, got {v!r}")
    return parse


def _host_port(v: Any) -> str:
    host, sep, port = v.strip().rpartition(":") if isinstance(v, str) else ("", "", "")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host \
            or not host.isprintable() or any(c.isspace() for c in host):
        raise ValueError(f"expected HOST:PORT (the registry's address, e.g. 10.0.0.1:5000), got {v!r}")
    return f"{host}:{int(port)}"


def _cpu_set(v: Any) -> tuple[int, ...]:
    """CPU ids as Linux writes them (``0-3,6``), or a list of integers."""
    ids: set[int] = set()
    try:
        if isinstance(v, str):
            for part in v.replace(" ", "").split(","):
                lo, dash, hi = part.partition("-")
                first, last = int(lo, 10), int(hi if dash else lo, 10)
                if not 0 <= first <= last < 4096:
                    raise ValueError
                ids.update(range(first, last + 1))
        elif isinstance(v, list) and v and all(type(i) is int and 0 <= i < 4096 for i in v):
            ids.update(v)
        else:
            raise ValueError
    except ValueError:
        raise ValueError(f"expected CPU ids like 0-3,6 (or a list of integers), got {v!r}") from None
    return tuple(sorted(ids))


def _token(v: Any) -> str:
    v = v.strip() if isinstance(v, str) else v
    if not isinstance(v, str) or not v or len(v) > 1024 or not v.isprintable() \
            or any(c.isspace() for c in v):
        raise ValueError("expected a token without spaces, of 1 to 1024 printable characters "
                         "(for example from `openssl rand -hex 32`)")
    return v


SETTINGS: dict[str, Callable[[Any], Any]] = {
    "host": _text(max_len=255),
    "port": _int(0, 65535),
    "name": _text(allow_empty=True, max_len=253),
    "token": _token,
    "token_file": _text(),
    "disk_path": _text(),
    "sysfs_root": _text(),
    "vcgencmd": _text(allow_empty=True),
    "sample_interval_s": _seconds(0.1, 3600),
    "throttle_interval_s": _seconds(0.5, 3600),
    "max_body_bytes": _int(1, 1 << 30),
    "log_level": _choice(LOG_LEVELS),
    "access_log": _bool,
    "cores": _int(1, 4096),
    "mem_mb": _int(1, 1 << 24),
    "cpu_set": _cpu_set,
    "allow_commands": _bool,
    "oversubscribe": _bool,
    "work_dir": _text(),
    "max_finished_tasks": _int(0, 100_000),
    "master_url": _http_url,
    "report_from": _ip_address,
    "emulate": _bool,
    "power_source": _choice(POWER_SOURCES),
    "hwmon_path": _text(),
    "power_interval_s": _seconds(0.1, 3600),
    "registry": _host_port,
    "container_engine": _text(allow_empty=True),
    "container_runtime": _text(allow_empty=True),
}
assert set(SETTINGS) == {f.name for f in dataclasses.fields(Config)}


def _parse_layer(values: Mapping[str, Any], where: Callable[[str], str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in SETTINGS:
            raise ConfigError(f"{where(key)}: unknown setting (known: {', '.join(SETTINGS)})")
        try:
            out[key] = SETTINGS[key](value)
        except ValueError as e:
            raise ConfigError(f"{where(key)}: {e}") from None
    return out


# ---------------------------------------------------------------- sources
def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings in a JSON or TOML file, checked.  Raises :class:`ConfigError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read: {e}") from None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p}:{e.lineno}: invalid JSON: {e.msg}") from None
    else:
        from ._toml import TomlError, loads

        try:
            data = loads(text)
        except TomlError as e:
            raise ConfigError(f"{p}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a table of settings, got {type(data).__name__}")
    return _parse_layer(data, lambda key: f"{p}: {key}")


def _env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    raw: dict[str, str] = {}
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV:
            continue
        key = var[len(ENV_PREFIX):].lower()
        if key in SETTINGS:
            raw[key] = value
        else:
            log.warning("ignoring unknown environment variable %s", var)
    return _parse_layer(raw, lambda key: ENV_PREFIX + key.upper())


def _read_token_file(path: str) -> str:
    try:
        mode = os.stat(path).st_mode
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"token_file: cannot read {path}: {e}") from None
    if mode & stat.S_IROTH:
        log.warning("token file %s is readable by every user; chmod 640 it", path)
    try:
        return _token(text.strip())
    except ValueError as e:
        raise ConfigError(f"token_file: {path}: {e}") from None


def load_config(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
                config_file: str | None = None) -> Config:
    """The settings from defaults, ``config_file`` (or ``$RPIAAS_AGENT_CONFIG``), ``env``, ``flags``.

    :param flags: settings given on the command line (``None`` values are not given).
    :param env: the environment to read ``RPIAAS_AGENT_*`` from (default :data:`os.environ`).
    :param config_file: a JSON or TOML file; overrides ``RPIAAS_AGENT_CONFIG``.
    :returns: the checked settings, with the token read from ``token_file`` if one is named.
    :raises ConfigError: naming the source and the key of the first bad setting.
    """
    env = os.environ if env is None else env
    layers: list[dict[str, Any]] = []
    path = config_file or env.get(CONFIG_ENV)
    if path:
        layers.append(read_config_file(path))
    layers.append(_env_layer(env))
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    if "token" in given:
        raise ConfigError("token: not accepted as a flag (others can read it); "
                          "use token_file or RPIAAS_AGENT_TOKEN")
    layers.append(_parse_layer(given, lambda key: "--" + key.replace("_", "-")))
    merged: dict[str, Any] = {}
    for layer in layers:
        if "token" in layer or "token_file" in layer:  # the latest source of the token wins
            merged.pop("token", None)
            merged.pop("token_file", None)
        merged.update(layer)
    if merged.get("token_file"):
        merged["token"] = _read_token_file(merged["token_file"])
    _check_workload_settings(merged)
    return Config(**merged)


def _check_workload_settings(settings: Mapping[str, Any]) -> None:
    """The capacity for tasks is this node's to give: CPUs it may use, memory it has."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else list(range(psutil.cpu_count() or 1))
    cpu_set = settings.get("cpu_set") or allowed
    outside = sorted(set(cpu_set) - set(allowed))
    if outside:
        raise ConfigError(f"cpu_set: CPU {outside[0]} is not one this process may run on "
                          f"(it may: {','.join(map(str, allowed))})")
    cores = settings.get("cores")
    if cores is not None and cores > len(cpu_set) and not settings.get("oversubscribe"):
        raise ConfigError(f"cores: {cores} is more than the {len(cpu_set)} CPUs of cpu_set "
                          "(each core of a task is a CPU of its own; oversubscribe = true lets "
                          "tasks share them, as an emulated node on a smaller machine)")
    total_mb = psutil.virtual_memory().total >> 20
    mem_mb = settings.get("mem_mb")
    if mem_mb is not None and mem_mb > total_mb:
        raise ConfigError(f"mem_mb: {mem_mb} is more than the node's {total_mb} MB")
    work_dir = settings.get("work_dir", Config.work_dir)
    if not os.path.isdir(work_dir):
        raise ConfigError(f"work_dir: {work_dir} is not a directory")
