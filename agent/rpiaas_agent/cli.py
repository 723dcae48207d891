"""The ``rpiaas-agent`` command: read the settings, serve until SIGTERM or SIGINT.

Exit codes: 0 stopped by a signal (after a clean shutdown), 1 cannot listen,
2 bad settings (one line naming the source and key, never a traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from . import __version__
from .app import create_app
from .config import Config, ConfigError, load_config
from .keys import LISTENING, THERMAL, THROTTLE

__all__ = ["main", "serve"]

log = logging.getLogger("rpiaas_agent")

EXIT_OK, EXIT_LISTEN, EXIT_CONFIG = 0, 1, 2

SHUTDOWN_TIMEOUT_S = 5.0
# The graceful shutdown's timeout is the runner's since aiohttp 3.9 (the site's one
# is deprecated there); before, only the site took it, and an AppRunner passed it on
# to every connection's handler, which then failed to start: every request went
# unanswered, silently.
_RUNNER_TAKES_SHUTDOWN_TIMEOUT = \
    "shutdown_timeout" in inspect.signature(web.BaseRunner.__init__).parameters


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rpiaas-agent",
        description="The rpiaas node agent: reports this node over HTTP (/ping, /info, /metrics) "
                    "and runs tasks for the master (/tasks). "
                    "Every setting can also come from a file (--config) or RPIAAS_AGENT_<NAME>.")
    p.add_argument("--version", action="version", version=f"rpiaas-agent {__version__}")
    p.add_argument("--config", metavar="FILE",
                   help="JSON or TOML settings file (default: $RPIAAS_AGENT_CONFIG)")
    p.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--port", help="port to listen on (default 8081; 0 picks a free one)")
    p.add_argument("--name", help="node name reported (default: the hostname)")
    p.add_argument("--token-file", metavar="FILE",
                   help="file holding the bearer token for control endpoints "
                        "(or RPIAAS_AGENT_TOKEN; never a flag)")
    p.add_argument("--disk-path", metavar="PATH", help="report the file system holding PATH (default /)")
    p.add_argument("--sysfs-root", metavar="DIR", help="where class/thermal is (default /sys)")
    p.add_argument("--vcgencmd", metavar="CMD",
                   help="command for throttling flags (default vcgencmd; '' turns them off)")
    p.add_argument("--sample-interval-s", metavar="S", help="CPU usage sampling interval (default 1)")
    p.add_argument("--throttle-interval-s", metavar="S", help="vcgencmd polling interval (default 5)")
    p.add_argument("--max-body-bytes", metavar="N", help="largest request body accepted (default 65536)")
    p.add_argument("--log-level", help="debug, info, warning or error (default info)")
    p.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=None,
                   help="log a line per request (default off)")
    p.add_argument("--cores", metavar="N",
                   help="cores that tasks may hold in all (default: the CPUs of --cpu-set)")
    p.add_argument("--mem-mb", metavar="MB",
                   help="memory that tasks may hold in all (default: the node's total)")
    p.add_argument("--cpu-set", metavar="IDS",
                   help="CPUs tasks run on, e.g. 1-3 (default: those the agent may use)")
    p.add_argument("--allow-commands", action=argparse.BooleanOptionalAction, default=None,
                   help="accept `command` tasks, which run any program as the agent's user "
                        "(default off)")
    p.add_argument("--oversubscribe", action=argparse.BooleanOptionalAction, default=None,
                   help="let --cores exceed the CPUs of --cpu-set: tasks share CPUs, as an "
                        "emulated node on a smaller machine (default off)")
    p.add_argument("--work-dir", metavar="DIR",
                   help="where tasks run and `io` tasks write (default /var/tmp)")
    p.add_argument("--max-finished-tasks", metavar="N",
                   help="finished tasks kept for GET /tasks (default 256)")
    p.add_argument("--master-url", metavar="URL",
                   help="the master (http://HOST:8080): the agent reports its node's boot there "
                        "when it starts")
    p.add_argument("--report-from", metavar="ADDRESS",
                   help="the address the reports to the master come from (a node emulated on "
                        "loopback: its node's address)")
    p.add_argument("--emulate", action=argparse.BooleanOptionalAction, default=None,
                   help="report the node this agent emulates on a shared machine: CPU and "
                        "memory of its own tasks against --cores and --mem-mb, not the host's "
                        "(default off)")
    p.add_argument("--power-source", help="the node's own power meter: none, hwmon (Linux hwmon "
                   "sensors, e.g. an INA219 board) or pmic (a Pi 5's PMIC; default none)")
    p.add_argument("--hwmon-path", metavar="DIR",
                   help="the hwmon class or one device's directory (default /sys/class/hwmon)")
    p.add_argument("--power-interval-s", metavar="S", help="power reading interval (default 1)")
    p.add_argument("--registry", metavar="HOST:PORT",
                   help="the testbed's image registry (plain HTTP): container tasks' images "
                        "without a registry of their own are pulled from it")
    p.add_argument("--container-engine", metavar="PROGRAM",
                   help="container engine of container tasks (default: podman, else docker; none: off)")
    p.add_argument("--container-runtime", metavar="NAME",
                   help="its OCI runtime (default runc; \"\": the engine's default)")
    p.add_argument("--print-config", action="store_true",
                   help="print the settings in effect (without the token) as JSON and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(_parser().parse_args(argv))
    config_file, print_config = args.pop("config"), args.pop("print_config")
    try:
        config = load_config(args, config_file=config_file)
    except ConfigError as e:
        print(f"rpiaas-agent: error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.server").addFilter(_quiet_bad_requests)
    if print_config:
        print(json.dumps(config.public(), indent=2))
        return EXIT_OK
    try:
        asyncio.run(serve(config))
    except OSError as e:  # the address is taken, or not this machine's
        print(f"rpiaas-agent: error: cannot listen on {config.host}:{config.port}: {e}",
              file=sys.stderr)
        return EXIT_LISTEN
    return EXIT_OK


async def serve(config: Config) -> None:
    """Serve the agent for ``config`` until SIGTERM or SIGINT, then shut down cleanly."""
    app = create_app(config)
    access_log = logging.getLogger("rpiaas_agent.access") if config.access_log else None
    timeout: dict[str, Any] = {"shutdown_timeout": SHUTDOWN_TIMEOUT_S}
    on_runner = _RUNNER_TAKES_SHUTDOWN_TIMEOUT
    runner = web.AppRunner(app, handle_signals=False, access_log=access_log,
                           **(timeout if on_runner else {}))
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, **({} if on_runner else timeout))
        await site.start()
        app[LISTENING].set()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        urls = ", ".join(f"http://{_hostport(a)}" for a in runner.addresses)
        log.info("rpiaas-agent %s, node %s, listening on %s (token %s, thermal zone %s, vcgencmd %s)",
                 __version__, config.node_name, urls, "set" if config.token else "not set: "
                 "control endpoints off", app[THERMAL].path or "none",
                 app[THROTTLE].executable or "none")
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()


def _quiet_bad_requests(record: logging.LogRecord) -> bool:
    """Log a request that aiohttp could not parse as one warning line, not an error traceback.

    Any port scanner sends such requests; aiohttp already answers them with 400.
    """
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, HttpProcessingError) and exc.code == 400:
        record.msg, record.args = "bad request: %s", (" ".join(str(exc.message).split()),)
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True


def _hostport(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address)
