#!/usr/bin/env python3
"""A webhook endpoint for benchmarks: answers every POST 204 at once, counting them; it checks
nothing (tests/webhooks/receiver.py is the one that verifies signatures). Prints the count on
SIGTERM or Ctrl-C.

Usage: bench/webhook-sink.py PORT      then  IM_WEBHOOKS_AFTER_SEND_URL=http://127.0.0.1:PORT/
"""

import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

received = 0
lock = threading.Lock()


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the dispatcher's libcurl uses it

    def do_POST(self):  # noqa: N802 (http.server's name)
        global received
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            received += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a dispatcher's connection reset when its node stops is no news here


def main():
    server = QuietServer(("127.0.0.1", int(sys.argv[1])), Sink)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # as Ctrl-C: print, then exit
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    print(f"webhook-sink: {received} events", flush=True)


if __name__ == "__main__":
    main()
