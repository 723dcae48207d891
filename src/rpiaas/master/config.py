"""The master's configuration file: the cluster, the poll interval, the store, agent overrides.

    cluster: clusters/testbed.yaml        # a path (relative to this file) or inline
    poll_interval_s: 10
    poll_timeout_s: 3                     # default: min(3, poll_interval_s)
    offline_after: 2                      # failed polls in a row that make a node offline
    store: master-history.db              # a path, sqlite:///path or mongodb://host/db
    agent_port: 8081                      # the port of every agent unless overridden
    agents:                               # per-node host:port, for local testing
      node1.cluster1.rpiaas.test: "127.0.0.1:18081"
    listen: "0.0.0.0:8080"
    token_file: master-token              # bearer token of the mutating endpoints
    node_secret_file: node-secret         # each node's token is an HMAC of its name with it
    runs_dir: runs                        # live runs: their journals and run directories
    run_hold_limit_s: 600                 # a run held this long for lack of disk space stops,
                                          # resumable (--resume)
    max_body_bytes: 4194304               # larger request bodies get 413
    retention:                            # downsampling and deletion of old history
      raw_s: 86400                        # keep raw samples a day,
      resolution_s: 60                    # then one mean a minute,
      keep_s: 2592000                     # and nothing older than 30 days
      every_s: 3600                       # applied once an hour

The token may also come from the environment, ``RPIAAS_MASTER_TOKEN`` (which
wins over the file), and the node secret from ``RPIAAS_MASTER_NODE_SECRET``.
Without a token the mutating endpoints refuse every call; without a node
secret the master cannot start tasks and accepts no node's report (see
:mod:`.auth` and ``docs/security.md``).  ``boot_secret_file`` (and
``RPIAAS_MASTER_BOOT_SECRET``) is the node secret's former name, still read;
``agent_token_file``, one token shared by every agent, is refused: with it
any node could speak for any other.

Errors are :class:`~rpiaas.inputs.source.InputError` naming the file, line and key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..inputs.cluster import parse_cluster
from ..inputs.source import InputError, KeyPath, Source, load_file
from ..live.hold import DEFAULT_HOLD_LIMIT_S
from ..model import ClusterSpec

__all__ = ["MASTER_KEYS", "MasterConfig", "Retention", "check_store", "load_master_config",
           "parse_host_port", "read_token"]

MASTER_KEYS = ("cluster", "poll_interval_s", "poll_timeout_s", "store", "agent_port", "agents",
               "listen", "offline_after", "token_file", "max_body_bytes", "retention",
               "node_secret_file", "runs_dir", "boot_secret_file", "agent_token_file",
               "run_hold_limit_s")
RETENTION_KEYS = ("raw_s", "resolution_s", "keep_s", "every_s")
DEFAULT_POLL_INTERVAL_S = 10.0
DEFAULT_AGENT_PORT = 8081
DEFAULT_LISTEN = ("0.0.0.0", 8080)
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024  # a scenario with its task list inline
TOKEN_ENV = "RPIAAS_MASTER_TOKEN"
NODE_SECRET_ENV = "RPIAAS_MASTER_NODE_SECRET"
BOOT_SECRET_ENV = "RPIAAS_MASTER_BOOT_SECRET"  # the node secret's former name
_MAX_TOKEN_CHARS = 1024


@dataclass(frozen=True)
class Retention:
    """How long history is kept at full detail, downsampled, and at all.

    Every ``every_s`` seconds the master replaces raw samples older than
    ``raw_s`` by means over ``resolution_s`` buckets, and deletes samples,
    state changes and events older than ``keep_s`` (never, if None).
    """

    raw_s: float = 86400.0
    resolution_s: float = 60.0
    keep_s: float | None = None
    every_s: float = 3600.0


@dataclass(frozen=True)
class MasterConfig:
    """Everything the master needs to run; ``agents`` maps a node name to ``(host, port)``."""

    cluster: ClusterSpec
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    poll_timeout_s: float | None = None
    store: str = "master-history.db"
    agent_port: int = DEFAULT_AGENT_PORT
    agents: dict[str, tuple[str, int]] = field(default_factory=dict)
    listen: tuple[str, int] = DEFAULT_LISTEN
    token: str | None = field(default=None, repr=False)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    retention: Retention | None = None
    runs_dir: str = "runs"
    resume: bool = False  # take up unfinished live runs at start (``--resume``)
    offline_after: int = 2
    # node tokens are HMAC-SHA256(node_secret, name) (see .auth)
    node_secret: str | None = field(default=None, repr=False)
    run_hold_limit_s: float = DEFAULT_HOLD_LIMIT_S  # see rpiaas.live.hold

    @property
    def timeout_s(self) -> float:
        """Per-request timeout: never longer than one poll interval."""
        if self.poll_timeout_s is not None:
            return self.poll_timeout_s
        return min(3.0, self.poll_interval_s)


def parse_host_port(text: str, default_host: str | None = None, any_port: bool = False
                    ) -> tuple[str, int]:
    """``"host:port"`` (or ``":port"`` / ``"port"`` with ``default_host``) -> ``(host, port)``.

    Port 0 (any free port) only with ``any_port``.
    """
    host, sep, port = text.rpartition(":")
    if not sep and default_host is not None:
        host, port = default_host, text
    elif not host and default_host is not None:
        host = default_host
    if not host or not port.isdigit() or not (0 if any_port else 1) <= int(port) < 65536:
        raise ValueError(f"expected host:port, got {text!r}")
    return host.strip("[]"), int(port)


_STORE_SCHEMES = ("sqlite", "mongodb", "mongodb+srv")


def check_store(target: str) -> str:
    """``target`` if :func:`~rpiaas.store.open_store` can open it, else ValueError (nothing is opened)."""
    scheme, sep, rest = target.partition("://")
    if not target:
        raise ValueError("expected a path, sqlite:///path or mongodb://host/database, got ''")
    if sep and scheme.lower() not in _STORE_SCHEMES:
        raise ValueError(f"no history store for scheme {scheme!r}"
                         " (use a path, sqlite:///path or mongodb://host/database)")
    if sep and scheme.lower() == "sqlite" and (not rest.startswith("/") or rest == "/"):
        raise ValueError("write sqlite:///relative.db or sqlite:////absolute.db")
    return target


def read_token(path: str | Path) -> str:
    """The token in the file at ``path`` (surrounding white space dropped); ValueError if unusable."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read {path}: {e}") from None
    return check_token(text)


def check_token(text: str) -> str:
    """``text`` if it can be a bearer token: 1 to 1024 printable ASCII characters, no spaces."""
    if not (0 < len(text) <= _MAX_TOKEN_CHARS and text.isascii() and text.isprintable()
            and " " not in text):
        raise ValueError("expected a token of 1 to 1024 printable ASCII characters without spaces")
    return text


def _host_port(src: Source, path: KeyPath, value: object, default_host: str | None = None,
               any_port: bool = False) -> tuple[str, int]:
    try:
        return parse_host_port(src.string(path, value), default_host, any_port)
    except ValueError as e:
        src.fail(path, str(e))


def load_master_config(path: str | Path) -> MasterConfig:
    """Read and check a master config file."""
    src = load_file(path)
    if src.data is None:
        src.fail((), "empty master config")
    data = src.mapping((), src.data, MASTER_KEYS, required=("cluster",))
    cluster = parse_cluster(src, ("cluster",), data["cluster"])
    interval = DEFAULT_POLL_INTERVAL_S
    if "poll_interval_s" in data:
        interval = src.number(("poll_interval_s",), data["poll_interval_s"], positive=True)
    timeout = None
    if "poll_timeout_s" in data:
        timeout = src.number(("poll_timeout_s",), data["poll_timeout_s"], positive=True)
    store = str(src.base / "master-history.db")  # beside the config, like relative paths
    if "store" in data:
        store = src.string(("store",), data["store"])
        try:
            check_store(store)
        except ValueError as e:
            src.fail(("store",), str(e))
        if "://" not in store and store != ":memory:" and not Path(store).is_absolute():
            store = str(src.base / store)
    agent_port = DEFAULT_AGENT_PORT
    if "agent_port" in data:
        agent_port = src.integer(("agent_port",), data["agent_port"], minimum=1)
        if agent_port > 65535:
            src.fail(("agent_port",), f"expected a port 1-65535, got {agent_port}")
    names = {n.name for n in cluster.nodes}
    agents: dict[str, tuple[str, int]] = {}
    if data.get("agents") is not None:
        for name, value in src.mapping(("agents",), data["agents"]).items():
            if name not in names:
                src.fail(("agents", name), "no such node in the cluster")
            agents[name] = _host_port(src, ("agents", name), value)
    listen = DEFAULT_LISTEN
    if "listen" in data:
        listen = _host_port(src, ("listen",), data["listen"], default_host="0.0.0.0", any_port=True)
    token = _token(src, data, "token_file", TOKEN_ENV)
    if "agent_token_file" in data:
        src.fail(("agent_token_file",), "one token shared by every agent lets any node end any "
                 "node's tasks; give node_secret_file instead (each node's token derives from "
                 "it; see docs/security.md)")
    if os.environ.get("RPIAAS_MASTER_AGENT_TOKEN"):
        raise InputError("one token shared by every agent is no longer taken; set "
                         f"{NODE_SECRET_ENV} instead (see docs/security.md)",
                         file="RPIAAS_MASTER_AGENT_TOKEN")
    if "node_secret_file" in data and "boot_secret_file" in data:
        src.fail(("boot_secret_file",), "the former name of node_secret_file: give one of them")
    secret_key = "boot_secret_file" if "boot_secret_file" in data else "node_secret_file"
    node_secret = _token(src, data, secret_key,
                         NODE_SECRET_ENV if os.environ.get(NODE_SECRET_ENV) else BOOT_SECRET_ENV)
    runs_dir = str(src.base / "runs")
    if "runs_dir" in data:
        runs_dir = str(src.base / src.string(("runs_dir",), data["runs_dir"]))
    max_body = DEFAULT_MAX_BODY_BYTES
    if "max_body_bytes" in data:
        max_body = src.integer(("max_body_bytes",), data["max_body_bytes"], minimum=1)
    retention = None
    if data.get("retention") is not None:
        retention = _retention(src, data["retention"])
    if not cluster.nodes:
        raise InputError("the cluster has no compute nodes", src.file, src.line_of(("cluster",)),
                         "cluster")
    hold_limit_s = DEFAULT_HOLD_LIMIT_S
    if "run_hold_limit_s" in data:
        hold_limit_s = src.number(("run_hold_limit_s",), data["run_hold_limit_s"], positive=True)
    return MasterConfig(cluster, interval, timeout, store, agent_port, agents, listen, token,
                        max_body, retention, runs_dir, node_secret=node_secret,
                        run_hold_limit_s=hold_limit_s)


def _token(src: Source, data: dict[str, object], key: str, env: str) -> str | None:
    """The token of file ``key`` (relative to the config), overridden by the variable ``env``."""
    token = None
    if key in data:
        try:
            token = read_token(src.base / src.string((key,), data[key]))
        except ValueError as e:
            src.fail((key,), str(e))
    if os.environ.get(env):
        try:
            token = check_token(os.environ[env])
        except ValueError as e:
            raise InputError(str(e), file=env) from None
    return token


def _retention(src: Source, value: object) -> Retention:
    data = src.mapping(("retention",), value, RETENTION_KEYS)
    given = {key: src.number(("retention", key), data[key], positive=True)
             for key in RETENTION_KEYS if data.get(key) is not None}
    retention = Retention(**given)
    if retention.keep_s is not None and retention.keep_s < retention.raw_s:
        src.fail(("retention", "keep_s"), f"must not be shorter than raw_s ({retention.raw_s:g} s)")
    if retention.resolution_s > retention.raw_s:
        src.fail(("retention", "resolution_s"),
                 f"must not be longer than raw_s ({retention.raw_s:g} s)")
    return retention
