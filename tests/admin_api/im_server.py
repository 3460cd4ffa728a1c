"""Runs the embedded node (im-server) for the admin API tests as tests/e2e/embedded_server.cc runs
it: a fresh data directory, every port picked by the kernel, and the admin API on with a random
key. The server is tied to the test (tests/support/process_ties.py): a test killed even by SIGKILL
leaves no server behind. Its stdout and stderr go to a log that is kept, and its path printed,
when something goes wrong.
"""

import os
import pathlib
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
from process_ties import dies_with_this_process  # noqa: E402

READY_PREFIX = "im-server ready "
READY_TIMEOUT_S = 90  # an ASan build on two cores takes its time to start
DRAIN_TIMEOUT_MS = 2_000
STOP_TIMEOUT_S = DRAIN_TIMEOUT_MS / 1000 + 30
ADMIN_API_TIMEOUT_MS = 30_000


class ServerFailure(Exception):
    """im-server did not start, or did not stop cleanly; the message says why and shows its log."""


def server_environment(admin_key, token_secret):
    """The environment tests/e2e/embedded_server.cc gives im-server, plus the admin API's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IM_")}
    env.update({
        "IM_GATEWAY_LISTEN": "127.0.0.1:0",
        "IM_GATEWAY_METRICS_LISTEN": "127.0.0.1:0",
        "IM_GATEWAY_WORKERS": "2",
        "IM_GATEWAY_DRAIN_TIMEOUT_MS": str(DRAIN_TIMEOUT_MS),
        "IM_LOGIC_TOKEN_SECRET": token_secret,
        "IM_LOG_LEVEL": "info",
        # As in the e2e tests: sends are answered as fast as they come; limits have their own tests.
        "IM_LOGIC_SEND_RATE_PER_USER": "0",
        "IM_LOGIC_GROUP_SEND_RATE_PER_USER": "0",
        "IM_ADMIN_API_LISTEN": "127.0.0.1:0",
        "IM_ADMIN_API_KEY": admin_key,
        # An ASan build sharing two cores with a build or other tests can take longer than the
        # default 5 s to add thousands of members; a 504 then would be the machine's, not a bug.
        "IM_ADMIN_API_TIMEOUT_MS": str(ADMIN_API_TIMEOUT_MS),
    })
    return env


def ready_fields(line):
    """{'client_port': 7000, ...} from 'im-server ready client_port=7000 ...'."""
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


class ImServer:
    """One im-server with its admin API on a free loopback port.

    Use it as a context manager: entering starts it and waits for its ready line; leaving stops
    it with SIGTERM and raises ServerFailure unless it exited 0. `base_url` and `admin_key` are
    what a client needs."""

    def __init__(self, binary):
        self.binary = str(binary)
        self.admin_key = secrets.token_urlsafe(32)
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="im-admin-api-"))
        self.log_path = self.workdir / "im-server.log"
        self.popen = None
        self.ports = {}

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.ports['admin_api_port']}"

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.kill()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.kill()
            print(f"im-server's log kept in {self.log_path}", file=sys.stderr)
            return False
        self.stop()
        return False

    def start(self):
        data_dir = self.workdir / "data"
        data_dir.mkdir()
        env = server_environment(self.admin_key, secrets.token_hex(32))
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [self.binary, "--data", str(data_dir)], env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, process_group=0,
                preexec_fn=dies_with_this_process())
        line = self.wait_for_ready_line()
        self.ports = ready_fields(line)
        if "admin_api_port" not in self.ports:
            raise ServerFailure(f"im-server serves no admin API: no admin_api_port in its ready "
                                f"line '{line}'")

    def wait_for_ready_line(self):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            for line in self.log_text().splitlines():
                if line.startswith(READY_PREFIX):
                    return line.strip()
            if self.popen.poll() is not None:
                raise ServerFailure(f"im-server exited with {self.popen.returncode} before it "
                                    f"was ready; {self.log_tail()}")
            time.sleep(0.1)
        raise ServerFailure(f"im-server printed no '{READY_PREFIX.strip()}' line within "
                            f"{READY_TIMEOUT_S} s; {self.log_tail()}")

    def stop(self):
        """SIGTERM, then the exit status must be 0 within the drain time (plus slack)."""
        if self.popen.poll() is not None:
            raise ServerFailure(f"im-server died during the test with exit status "
                                f"{self.popen.returncode}; {self.log_tail()}")
        self.popen.send_signal(signal.SIGTERM)
        try:
            status = self.popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ServerFailure(f"im-server did not exit within {STOP_TIMEOUT_S} s of SIGTERM; "
                                f"{self.log_tail()}") from None
        if status != 0:
            raise ServerFailure(f"im-server exited with {status} after SIGTERM; "
                                f"{self.log_tail()}")
        shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self):
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines=40):
        tail = "".join(self.log_text().splitlines(True)[-lines:])
        return f"the end of its log ({self.log_path}):\n{tail}"
