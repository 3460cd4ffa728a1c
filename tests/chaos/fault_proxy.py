"""TCP fault proxies for the chaos run: each stands on a link between two tiers (the gateways and a
logic node, a logic node and Redis or MariaDB) and, on command, cuts it silently (a partition:
nothing passes either way and nothing is closed, so each side finds out only by its own timeouts),
resets every connection on it (RST both ways, as a middlebox that lost its state), or delays every
byte by a fixed time each way. Standard library only: asyncio on one thread of its own for all the
proxies; the commands may come from any thread.
"""

import asyncio
import socket
import struct
import threading

CHUNK_BYTES = 64 * 1024
# Chunks read but not yet written, per direction: past this the reading side waits, so that a
# stalled or slow link pushes back on its sender as TCP would, instead of buffering without end.
QUEUE_CHUNKS = 64


class _Link:
    """One accepted connection and its connection to the target."""

    def __init__(self):
        self.writers = []
        self.tasks = []

    def reset(self):
        for writer in self.writers:
            sock = writer.get_extra_info("socket")
            if sock is None or sock.fileno() < 0:
                continue  # closed already
            # SO_LINGER 0: close sends RST, as a peer that forgot the connection would.
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass  # closed under us: nothing to reset
        self.close()

    def close(self):
        for writer in self.writers:
            writer.transport.abort()
        try:
            current = asyncio.current_task()
        except RuntimeError:  # a coroutine finalized after its loop stopped
            current = None
        for task in self.tasks:
            if task is not current:
                task.cancel()


class FaultProxy:
    """One listening port forwarding to one target. Its state is changed through FaultProxies'
    loop; read `name`, `listen_port` and `target_port` from anywhere."""

    def __init__(self, loop, name, listen_port, target_port):
        self.loop, self.name = loop, name
        self.listen_port, self.target_port = listen_port, target_port
        self.open = asyncio.Event()  # cleared while cut
        self.open.set()
        self.delay_sec = 0.0
        self.links = set()
        self.server = None

    async def start(self):
        self.server = await asyncio.start_server(self._accepted, "127.0.0.1", self.listen_port,
                                                 reuse_address=True)

    async def stop(self):
        if self.server is not None:
            self.server.close()
        for link in list(self.links):
            link.reset()

    async def _accepted(self, client_reader, client_writer):
        link = _Link()
        link.writers.append(client_writer)
        self.links.add(link)
        try:
            await self.open.wait()  # a connection made during a cut hangs, as a SYN would
            try:
                target_reader, target_writer = await asyncio.open_connection(
                    "127.0.0.1", self.target_port)
            except OSError:
                link.reset()  # the target is down: the client sees its connection refused
                return
            link.writers.append(target_writer)
            link.tasks = [asyncio.current_task()]
            await asyncio.gather(self._direction(link, client_reader, target_writer),
                                 self._direction(link, target_reader, client_writer))
        except (asyncio.CancelledError, ConnectionError, OSError):
            pass
        finally:
            self.links.discard(link)
            link.close()

    async def _direction(self, link, reader, writer):
        """Copies one way: a reader task queues each chunk with when it may leave, this one writes
        it then, while the link is open. EOF is passed on as a half close."""
        queue = asyncio.Queue(QUEUE_CHUNKS)

        async def read():
            while True:
                await self.open.wait()
                try:
                    data = await reader.read(CHUNK_BYTES)
                except (ConnectionError, OSError):
                    link.reset()  # reset by one side: the other side is reset too
                    return
                await queue.put((self.loop.time() + self.delay_sec, data))
                if not data:
                    return

        reading = asyncio.ensure_future(read())
        link.tasks.append(reading)
        try:
            while True:
                leave_at, data = await queue.get()
                wait = leave_at - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self.open.wait()
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        finally:
            reading.cancel()


class FaultProxies:
    """Every proxy of a run, served by one asyncio loop on a daemon thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fault-proxies",
                                       daemon=True)
        self.thread.start()
        self.proxies = {}

    def _on_loop(self, function, *args):
        """function(*args) run on the proxies' loop; its result."""
        async def run():
            return function(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def add(self, name, listen_port, target_port):
        """Starts a proxy from 127.0.0.1:listen_port to 127.0.0.1:target_port."""
        proxy = self._on_loop(FaultProxy, self.loop, name, listen_port, target_port)
        asyncio.run_coroutine_threadsafe(proxy.start(), self.loop).result(timeout=10)
        self.proxies[name] = proxy
        return proxy

    def cut(self, name):
        """A silent partition: nothing passes until heal(); connections stay open."""
        proxy = self.proxies[name]
        self._on_loop(proxy.open.clear)

    def heal(self, name):
        proxy = self.proxies[name]
        self._on_loop(proxy.open.set)

    def reset(self, name):
        """Every connection on the link closed with RST both ways; returns how many."""
        proxy = self.proxies[name]

        def reset_all():
            links = list(proxy.links)
            for link in links:
                link.reset()
            return len(links)
        return self._on_loop(reset_all)

    def set_delay(self, name, seconds):
        """Every byte leaves this long after it came, each way (0: none)."""
        proxy = self.proxies[name]
        self._on_loop(setattr, proxy, "delay_sec", seconds)

    def connections(self, name):
        proxy = self.proxies[name]
        return self._on_loop(len, proxy.links)

    def stop(self):
        """Closes every proxy and connection, and ends the loop's thread."""
        async def stop_all():
            for proxy in self.proxies.values():
                await proxy.stop()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(stop_all(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

