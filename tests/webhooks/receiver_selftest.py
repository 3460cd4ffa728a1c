"""Self-test of receiver.py, the webhook receiver the end-to-end tests start: it runs the real
receiver and sends it callbacks signed with the Standard Webhooks library, as logic signs them.

Run: tests/admin_api/run-python.sh -m pytest -q -p no:cacheprovider \
         tests/webhooks/receiver_selftest.py
"""

import base64
import json
import os
import pathlib
import secrets
import select
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
import requests
from standardwebhooks.webhooks import Webhook

RECEIVER = pathlib.Path(__file__).resolve().parent / "receiver.py"
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def start_receiver():
    """(Popen, base URL) of a receiver that has printed its port."""
    popen = subprocess.Popen([sys.executable, str(RECEIVER), "--secret", SECRET],
                             stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([popen.stdout], [], [], 10)
    line = popen.stdout.readline() if ready else ""
    assert line.startswith("receiver_port="), f"no port line, got {line!r}"
    return popen, f"http://127.0.0.1:{int(line.split('=')[1])}"


@pytest.fixture(scope="module")
def receiver():
    popen, url = start_receiver()
    with popen:
        yield url
        popen.send_signal(signal.SIGTERM)
        assert popen.wait(5) == 0


@pytest.fixture
def http(receiver):
    session = requests.Session()  # keep-alive: every request of a test on one connection
    assert session.post(f"{receiver}/control/reset").status_code == 200
    yield session
    session.close()


def send_hook(http, url, hook, payload, tamper=None, timeout=10):
    """POSTs payload to /hooks/<hook> signed as logic signs it; tamper(body) alters it after."""
    body = json.dumps(payload).encode()
    now = datetime.now(timezone.utc)
    msg_id = "msg_" + secrets.token_hex(8)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(SECRET).sign(msg_id, now, body),
               "Content-Type": "application/json"}
    return http.post(f"{url}/hooks/{hook}", data=tamper(body) if tamper else body,
                     headers=headers, timeout=timeout)


def before_send(http, url, text, key="body_base64", timeout=10):
    """A before_send callback of a text message, as docs/callbacks.md shows it."""
    payload = {"type": "message.before_send", "timestamp": "2026-12-07T06:40:00.123Z",
               "data": {"sender": "alice", "device": "phone", "conv_id": "s:alice:bob",
                        "to_uid": "bob", "client_msg_id": "c-17", "type": "TEXT",
                        key: base64.b64encode(text.encode()).decode()}}
    return send_hook(http, url, "before_send", payload, timeout=timeout)


def test_a_good_signature_is_recorded_and_answered_200(receiver, http):
    reply = send_hook(http, receiver, "after_send", {"type": "message.after_send", "data": {}})
    assert (reply.status_code, reply.json()) == (200, {})
    events = http.get(f"{receiver}/control/events", params={"hook": "after_send"}).json()["events"]
    assert len(events) == 1
    assert events[0]["hook"] == "after_send" and events[0]["status"] == 200
    assert events[0]["id"] == reply.request.headers["webhook-id"]
    assert events[0]["timestamp"] == int(reply.request.headers["webhook-timestamp"])
    assert events[0]["payload"] == {"type": "message.after_send", "data": {}}
    assert http.get(f"{receiver}/control/stats").json()["received"] == {"after_send": 1}


def test_a_tampered_body_or_no_signature_is_refused_401(receiver, http):
    reply = send_hook(http, receiver, "after_send", {"n": 1},
                      tamper=lambda body: body.replace(b"1", b"2"))
    assert reply.status_code == 401
    assert http.post(f"{receiver}/hooks/after_send", data=b"{}").status_code == 401
    stats = http.get(f"{receiver}/control/stats").json()
    assert stats["bad_signatures"] == 2 and len(stats["bad_signature_reasons"]) == 2
    assert stats["received"] == {}
    assert http.get(f"{receiver}/control/events").json() == {"events": []}


def test_a_signed_body_that_is_not_json_is_400(receiver, http):
    body, now, msg_id = b"not json", datetime.now(timezone.utc), "msg_1"
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(SECRET).sign(msg_id, now, body)}
    assert http.post(f"{receiver}/hooks/after_send", data=body, headers=headers).status_code == 400
    assert http.get(f"{receiver}/control/stats").json()["bad_json"] == 1


def test_before_send_decides_by_the_text(receiver, http):
    refused = before_send(http, receiver, "refuse: no")
    assert refused.status_code == 200
    assert refused.json() == {"action": "refuse", "code": "PERMISSION_DENIED",
                              "message": "refused by the test app"}
    rewritten = before_send(http, receiver, "rewrite:héllo")
    assert rewritten.status_code == 200 and rewritten.json()["action"] == "replace"
    assert base64.b64decode(rewritten.json()["body_base64"]).decode() == "rewritten:héllo"
    assert before_send(http, receiver, "refuse:", key="body").json()["action"] == "refuse"
    allowed = before_send(http, receiver, "hello")
    assert (allowed.status_code, allowed.json()) == (200, {"action": "allow"})
    assert before_send(http, receiver, "error: x").status_code == 500
    events = http.get(f"{receiver}/control/events", params={"hook": "before_send"}).json()["events"]
    assert [e["status"] for e in events] == [200, 200, 200, 200, 500]


def test_a_slow_check_is_recorded_before_it_is_answered(receiver, http):
    with pytest.raises(requests.exceptions.ReadTimeout):
        before_send(http, receiver, "slow: wait", timeout=1)
    events = http.get(f"{receiver}/control/events").json()["events"]
    assert [(e["hook"], e["status"]) for e in events] == [("before_send", 200)]


def test_a_status_override_holds_until_removed(receiver, http):
    set_status = f"{receiver}/control/status"
    assert http.post(set_status, json={"hook": "after_send", "status": 500}).status_code == 200
    assert send_hook(http, receiver, "after_send", {}).status_code == 500
    assert send_hook(http, receiver, "online", {}).status_code == 200
    assert http.post(set_status, json={"hook": "after_send", "status": None}).status_code == 200
    assert send_hook(http, receiver, "after_send", {}).status_code == 200


def test_unknown_paths_are_404(receiver, http):
    assert http.get(f"{receiver}/nope").status_code == 404
    assert http.post(f"{receiver}/control/nope", json={}).status_code == 404


def test_sigterm_exits_0_promptly_even_with_an_open_connection():
    popen, url = start_receiver()
    with popen, requests.Session() as session:
        assert session.get(f"{url}/control/stats").status_code == 200
        started = time.monotonic()
        popen.send_signal(signal.SIGTERM)
        assert popen.wait(2) == 0
    assert time.monotonic() - started < 2


def test_it_exits_when_its_parent_dies():
    """A parent that starts the receiver, says its pid once it listens, and is then killed."""
    with subprocess.Popen(
            [sys.executable, "-c",
             "import subprocess, sys; p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE);"
             " p.stdout.readline(); print(p.pid, flush=True); sys.stdin.read()",
             sys.executable, str(RECEIVER), "--secret", SECRET],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as parent:
        pid = int(parent.stdout.readline())
        parent.kill()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the receiver outlived its parent")


def alive(pid):
    """Running, not a zombie that nobody reaped."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
