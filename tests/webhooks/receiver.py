"""The test app's end of logic's business callbacks (webhooks): an HTTP server that end-to-end
tests start as a subprocess. It checks every callback's signature with the stock Standard Webhooks
library, records what it received, and answers the way the test asked, so that a test can drive
before-send decisions (refuse, rewrite, slow, error) and failing asynchronous hooks.

Usage: receiver.py --secret whsec_<base64 key> [--port 0] [--host 127.0.0.1] [--verbose]
It prints one line `receiver_port=<N>` once it listens, and exits 0 on SIGTERM or SIGINT, or when
its parent dies (so that a killed test leaves no receiver behind).

  POST /hooks/<name>      a signed callback: 401 on a bad signature, 400 on a bad body; else
                          the hook's override status, or for before_send a decision by the
                          message's prefix (refuse:, rewrite:, slow: 3 s, error: 500), or 200
  POST /control/status    {"hook": name, "status": 500} answers that status from now on
                          ({"status": null} removes it)
  GET  /control/events    {"events": [...]} in arrival order; ?hook=<name> for one hook
  GET  /control/stats     counts of bad signatures, bad bodies and received callbacks
  POST /control/reset     forgets everything above
"""

import argparse
import base64
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

PARENT_POLL_S = 0.5
SLOW_S = 3


class Hooks:
    """What the hooks received and how they answer; shared by the handler threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.events = []
            self.received = {}
            self.bad_signature_reasons = []
            self.bad_json = 0
            self.overrides = {}

    def record(self, event):
        with self.lock:
            self.events.append(event)
            self.received[event["hook"]] = self.received.get(event["hook"], 0) + 1

    def bad_signature(self, reason):
        with self.lock:
            self.bad_signature_reasons.append(reason)

    def bad_body(self):
        with self.lock:
            self.bad_json += 1

    def set_override(self, hook, status):
        with self.lock:
            if status is None:
                self.overrides.pop(hook, None)
            else:
                self.overrides[hook] = status

    def override(self, hook):
        with self.lock:
            return self.overrides.get(hook)

    def events_of(self, hook):
        with self.lock:
            return [e for e in self.events if hook is None or e["hook"] == hook]

    def stats(self):
        with self.lock:
            return {"bad_signatures": len(self.bad_signature_reasons),
                    "bad_signature_reasons": list(self.bad_signature_reasons),
                    "bad_json": self.bad_json, "received": dict(self.received)}


def before_send_answer(payload):
    """(status, body, delay_s) of the test app's decision on a message, by its text's prefix. The
    message is data.body_base64 (docs/callbacks.md; data.body is taken too), and a rewrite is
    answered as body_base64, since a replace's "body" is plain text there."""
    data = payload.get("data") if isinstance(payload, dict) else None
    body = data.get("body_base64", data.get("body")) if isinstance(data, dict) else None
    if not isinstance(body, str):
        raise ValueError("no data.body_base64 string")
    text = base64.b64decode(body, validate=True).decode("utf-8", errors="replace")
    if text.startswith("refuse:"):
        return 200, {"action": "refuse", "code": "PERMISSION_DENIED",
                     "message": "refused by the test app"}, 0
    if text.startswith("rewrite:"):
        rewritten = "rewritten:" + text[len("rewrite:"):]
        return 200, {"action": "replace",
                     "body_base64": base64.b64encode(rewritten.encode()).decode()}, 0
    if text.startswith("error:"):
        return 500, {"error": "test"}, 0
    return 200, {"action": "allow"}, SLOW_S if text.startswith("slow:") else 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)

    def reply(self, status, body):
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # a caller that gave up waiting
            self.close_connection = True

    def read_body(self):
        """The body, or None (then the connection is closed) when no Content-Length frames it."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or "Transfer-Encoding" in self.headers:
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def do_GET(self):
        if self.read_body() is None:
            return self.reply(400, {"error": "a body needs a Content-Length"})
        url = urllib.parse.urlsplit(self.path)
        hooks = self.server.hooks
        if url.path == "/control/events":
            hook = urllib.parse.parse_qs(url.query).get("hook", [None])[0]
            self.reply(200, {"events": hooks.events_of(hook)})
        elif url.path == "/control/stats":
            self.reply(200, hooks.stats())
        else:
            self.reply(404, {"error": f"no such path: GET {url.path}"})

    def do_POST(self):
        body = self.read_body()
        if body is None:
            return self.reply(400, {"error": "a body needs a Content-Length"})
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/hooks/") and len(path) > len("/hooks/"):
            self.hook(path[len("/hooks/"):], body)
        elif path == "/control/status":
            self.set_status(body)
        elif path == "/control/reset":
            self.server.hooks.reset()
            self.reply(200, {})
        else:
            self.reply(404, {"error": f"no such path: POST {path}"})

    def hook(self, name, body):
        hooks = self.server.hooks
        try:
            self.server.webhook.verify(body, dict(self.headers), json_parse=False)
        except WebhookVerificationError as e:
            hooks.bad_signature(f"{name}: {e}")
            return self.reply(401, {"error": str(e)})
        try:
            payload = json.loads(body)
        except ValueError as e:
            hooks.bad_body()
            return self.reply(400, {"error": f"bad JSON: {e}"})
        status, answer, delay_s = hooks.override(name), {}, 0
        if status is None:
            status = 200
            if name == "before_send":
                try:
                    status, answer, delay_s = before_send_answer(payload)
                except ValueError as e:  # also a body that is not base64
                    hooks.bad_body()
                    status, answer = 400, {"error": f"bad before_send payload: {e}"}
        hooks.record({"hook": name, "id": self.headers["webhook-id"],
                      "timestamp": int(float(self.headers["webhook-timestamp"])),
                      "payload": payload, "status": status, "received_at": time.time()})
        time.sleep(delay_s)  # recorded first: a test sees a slow check its caller gave up on
        self.reply(status, answer)

    def set_status(self, body):
        try:
            request = json.loads(body)
            hook, status = request["hook"], request["status"]
        except (ValueError, TypeError, KeyError) as e:
            return self.reply(400, {"error": f"want {{'hook': name, 'status': int|null}}: {e!r}"})
        if not isinstance(hook, str) or not (
                status is None or (type(status) is int and 100 <= status <= 599)):
            return self.reply(400, {"error": "want {'hook': name, 'status': 100..599 or null}"})
        self.server.hooks.set_override(hook, status)
        self.reply(200, {})


def main():
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    parent = os.getppid()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secret", required=True, help="whsec_<base64 key>, as logic signs with")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args()
    try:
        if not args.secret.startswith("whsec_"):
            raise ValueError("no whsec_ prefix")
        webhook = Webhook(args.secret)
    except Exception as e:  # also binascii.Error, EmptyWebhookSecretError
        parser.error(f"--secret is not whsec_<base64 key>: {e}")

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads, server.block_on_close = True, False
    server.webhook, server.hooks, server.verbose = webhook, Hooks(), args.verbose
    threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
    print(f"receiver_port={server.server_address[1]}", flush=True)
    while not stop.wait(PARENT_POLL_S):
        if os.getppid() != parent:
            print("receiver.py: its parent died, exiting", file=sys.stderr)
            break
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
