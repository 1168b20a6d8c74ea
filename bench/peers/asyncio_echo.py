"""bench/peers/asyncio_echo.py: the Python asyncio peer of the echo benchmark: a
DatagramProtocol whose datagram_received sends each datagram back with transport.sendto.

    python3 asyncio_echo.py IP PORT SECONDS IDLE

Prints "asyncio_echo: listening on IP:PORT" on stderr once bound (PORT 0 picks a free
port), and "received=N sent=M errors=E" on stdout when it stops: after SECONDS in all, or
IDLE seconds after the last datagram.
"""
import asyncio
import sys


class Echo(asyncio.DatagramProtocol):
    def __init__(self):
        self.transport = None
        self.received = 0
        self.errors = 0

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.received += 1
        self.transport.sendto(data, addr)

    def error_received(self, exc):
        self.errors += 1


async def main(ip, port, seconds, idle):
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(Echo, local_addr=(ip, port))
    bound = transport.get_extra_info("sockname")
    print(f"asyncio_echo: listening on {bound[0]}:{bound[1]}", file=sys.stderr, flush=True)
    start = loop.time()
    seen, quiet_since = 0, start
    # Bounds: checked every 0.1 s; the loop ends after SECONDS, or IDLE s without a datagram.
    while True:
        await asyncio.sleep(0.1)
        now = loop.time()
        if proto.received != seen:
            seen, quiet_since = proto.received, now
        if (proto.received and now - quiet_since >= idle) or now - start > seconds:
            break
    transport.close()
    # sendto either sent at once or queued; whatever is still queued at close is lost
    print(f"received={proto.received} sent={proto.received} errors={proto.errors}")


if __name__ == "__main__":
    args = sys.argv[1:] + [None] * 4
    asyncio.run(main(args[0] or "127.0.0.1", int(args[1] or 0),
                     float(args[2] or 60), float(args[3] or 2)))
