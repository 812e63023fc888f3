#!/usr/bin/env python3
"""A delaying TCP relay for tests/faults (this kernel has no netem).

Runs inside one node's network namespace. An nftables rule there redirects
that node's outgoing connections to a peer's cluster port here; the relay
reads the original destination (SO_ORIGINAL_DST), connects to it with
SO_MARK set (the rule skips marked packets) and copies both ways. While
delaying (SIGUSR1; SIGUSR2 stops), every chunk waits DELAY_MS before it is
passed on, in order. Usage: delayer.py PORT DELAY_MS MARK
"""

import asyncio
import signal
import socket
import struct
import sys

SO_ORIGINAL_DST = 80
CHUNK = 65536


class Relay:
    def __init__(self, delay_ms, mark):
        self.delay = 0.0
        self.delay_ms = delay_ms
        self.mark = mark

    def on(self):
        self.delay = self.delay_ms / 1000.0

    def off(self):
        self.delay = 0.0

    async def pump(self, reader, writer):
        """Copies READER to WRITER; each chunk leaves `delay` seconds after it
        arrived, never before the chunk ahead of it (FIFO)."""
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()

        async def send():
            try:
                while True:
                    due, data = await queue.get()
                    wait = due - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        sender = asyncio.create_task(send())
        try:
            while True:
                data = await reader.read(CHUNK)
                queue.put_nowait((loop.time() + self.delay, data))
                if not data:
                    break
        except OSError:
            queue.put_nowait((loop.time(), b""))
        await sender

    async def serve(self, reader, writer):
        sock = writer.get_extra_info("socket")
        try:
            raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            port, packed = struct.unpack("!2xH4s8x", raw)
            host = socket.inet_ntoa(packed)
            out = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            out.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, self.mark)
            out.setblocking(False)
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(out, (host, port)), 10)
            peer_reader, peer_writer = await asyncio.open_connection(sock=out)
        except (OSError, asyncio.TimeoutError):
            writer.close()
            return
        await asyncio.gather(self.pump(reader, peer_writer), self.pump(peer_reader, writer))


async def main():
    port, delay_ms, mark = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    relay = Relay(delay_ms, mark)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, relay.on)
    loop.add_signal_handler(signal.SIGUSR2, relay.off)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    server = await asyncio.start_server(relay.serve, "0.0.0.0", port)
    print("listening", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
