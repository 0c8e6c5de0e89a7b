"""A TCP proxy on loopback that paces each direction of every connection to a bit rate: a shaped
link (100 Mb/s, 1 Gb/s) for Testing/benchmarks/bench_remote.py without network namespaces.

    python Testing/benchmarks/throttle_proxy.py --listen 9001 --target 8765 --mbit 100
"""
from __future__ import annotations

import argparse
import asyncio
import time

PIECE_BYTES = 64 << 10
MAX_LAG_S = 0.1
"""Longest the proxy may fall behind the link's schedule and catch up (on a loaded machine it is not
always scheduled in time; a real link keeps sending what is queued meanwhile)."""


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, bytes_per_s: float) -> None:
    """Copy ``reader`` to ``writer``, each piece released no sooner than the rate allows. The link
    idles (its schedule restarts) only while no data waits; data that waited while the proxy was not
    scheduled is sent at the link's rate from when it was due (at most :data:`MAX_LAG_S` late)."""
    due = time.monotonic()
    try:
        while True:
            asked = time.monotonic()
            data = await reader.read(PIECE_BYTES)
            if not data:
                break
            now = time.monotonic()
            start = max(due, now) if now - asked > 1e-3 else max(due, now - MAX_LAG_S)  # waited: the link idled
            due = start + len(data) / bytes_per_s
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(listen: int, target: int, bytes_per_s: float) -> None:
    async def handle(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(client_reader, server_writer, bytes_per_s),
                             pipe(server_reader, client_writer, bytes_per_s))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", type=int, required=True)
    parser.add_argument("--mbit", type=float, required=True, help="bit rate of each direction, Mbit/s")
    args = parser.parse_args()
    asyncio.run(serve(args.listen, args.target, args.mbit * 1e6 / 8))


if __name__ == "__main__":
    main()
