"""A TCP proxy on loopback that paces each direction of every connection to a bit rate: a shaped
link (100 Mb/s, 1 Gb/s) for Testing/benchmarks/bench_remote.py without network namespaces.

    python Testing/benchmarks/throttle_proxy.py --listen 9001 --target 8765 --mbit 100
"""
from __future__ import annotations

import argparse
import asyncio
import time

PIECE_BYTES = 64 << 10


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, bytes_per_s: float) -> None:
    """Copy ``reader`` to ``writer``, each piece released no sooner than the rate allows (no burst credit)."""
    due = time.monotonic()
    try:
        while data := await reader.read(PIECE_BYTES):
            due = max(due, time.monotonic()) + len(data) / bytes_per_s
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
