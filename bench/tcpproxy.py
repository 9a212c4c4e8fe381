"""``python -m bench.tcpproxy UPSTREAM_HOST:PORT``: a TCP proxy on loopback that can blackhole.

Each replica of a fault run reaches PostgreSQL through its own proxy, so one replica's network
path can fail while the other's works. The proxy prints ``listening <port>`` on stdout once it
accepts connections, then relays bytes both ways until told otherwise:

* ``SIGUSR1`` - **blackhole**: nothing is relayed any more, in either direction, on open or new
  connections. New connections are accepted (the kernel completes the handshake) but never
  reach the upstream; queries already sent wait for an answer that does not come. This is a
  network path that silently drops traffic: no reset, no refusal, only silence.
* ``SIGUSR2`` - **heal**: relaying resumes; bytes held meanwhile are delivered.
* ``SIGTERM`` - stop.

A userspace proxy cannot drop packets below TCP: the proxy's kernel still acknowledges what
the client sends (until its buffers fill), so TCP keepalives and ``tcp_user_timeout`` on the
client do not fire here as they would on a real dropped route. What this exercises is the
client's own time bounds (connect timeout, asyncio-level deadlines), which is what keeps a
replica answering.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

_CHUNK = 65536


class Proxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.stopped = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self.flowing.wait()
                data = await reader.read(_CHUNK)
                if not data:
                    break
                await self.flowing.wait()  # bytes read just before a blackhole wait too
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        await self.flowing.wait()  # a blackholed path never reaches the upstream
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        tasks = [
            asyncio.create_task(self._pipe(client_r, up_w)),
            asyncio.create_task(self._pipe(up_r, client_w)),
        ]
        self._tasks.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
                self._tasks.discard(task)
            for writer in (client_w, up_w):
                with contextlib.suppress(Exception):
                    writer.close()


async def main_async(upstream: tuple[str, int], port: int) -> None:
    proxy = Proxy(upstream)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", port, backlog=512)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, proxy.flowing.clear)
    loop.add_signal_handler(signal.SIGUSR2, proxy.flowing.set)
    loop.add_signal_handler(signal.SIGTERM, proxy.stopped.set)
    loop.add_signal_handler(signal.SIGINT, proxy.stopped.set)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await proxy.stopped.wait()


class ProxyProcess:
    """A running ``bench.tcpproxy`` (started by :meth:`start`; die with the starting thread)."""

    def __init__(self, upstream: tuple[str, int], log: Path | None = None) -> None:
        self.upstream = upstream
        self.log = log
        self.port = 0
        self.process: subprocess.Popen | None = None

    def start(self) -> ProxyProcess:
        from bench.services import spawn

        self.process = spawn(
            [sys.executable, "-m", "bench.tcpproxy", f"{self.upstream[0]}:{self.upstream[1]}"],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
            stderr=self.log.open("ab") if self.log else subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the TCP proxy did not start (said {line!r})")
        self.port = int(line.split()[1])
        return self

    def _signal(self, sig: int) -> None:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("the TCP proxy is not running")
        os.kill(self.process.pid, sig)

    def blackhole(self) -> None:
        self._signal(signal.SIGUSR1)

    def heal(self) -> None:
        self._signal(signal.SIGUSR2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("upstream", help="HOST:PORT to relay to")
    parser.add_argument("--port", type=int, default=0, help="listen port (default: a free one)")
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    asyncio.run(main_async((host or "127.0.0.1", int(port)), args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
