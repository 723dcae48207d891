"""The way in to a virtual testbed's master: a TCP relay from the host's loopback into its namespace.

The master of a virtual testbed listens on the boot server's address inside
the testbed's private network namespace, where the virtual nodes reach it.
``rpiaas run --live`` and the browser run on the host, which has no route
there, and the testbed adds none: no host interface or route is made.
Instead the testbed opens a listening socket on the host's loopback and
hands it to this process, which runs *inside* the namespace
(``ip netns exec``): a socket keeps the namespace it was made in, so the
inherited one accepts the host's connections while each connection onward,
made here, reaches the master in the namespace::

    python -m rpiaas.testbed.relay --fd N --to 10.77.0.254:8080

It copies bytes both ways until either side closes, and exits on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Sequence

__all__ = ["main"]

MAX_CONNECTIONS = 256  # more at once wait in the listen queue
CONNECT_TIMEOUT_S = 5.0
CHUNK_BYTES = 65536


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK_BYTES):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


async def _relay(host: str, port: int, slots: asyncio.Semaphore, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    async with slots:
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError) as e:
            print(f"relay: cannot reach {host}:{port}: {e}", file=sys.stderr, flush=True)
            writer.close()
            return
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()


async def _serve(fd: int, host: str, port: int) -> None:
    listener = socket.socket(fileno=fd)
    listener.setblocking(False)
    slots = asyncio.Semaphore(MAX_CONNECTIONS)
    server = await asyncio.start_server(lambda r, w: _relay(host, port, slots, r, w),
                                        sock=listener)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    where = listener.getsockname()
    print(f"relay: {where[0]}:{where[1]} -> {host}:{port}", file=sys.stderr, flush=True)
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rpiaas.testbed.relay",
                                description="relay TCP from an inherited listening socket")
    p.add_argument("--fd", type=int, required=True, help="the listening socket's descriptor")
    p.add_argument("--to", required=True, metavar="HOST:PORT", help="where to connect")
    args = p.parse_args(argv)
    host, _, port = args.to.rpartition(":")
    asyncio.run(_serve(args.fd, host, int(port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
