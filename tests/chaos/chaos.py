#!/usr/bin/env python3
"""The chaos run (issue 18, part 5): a local cluster of its own (two logic nodes, two gateways),
chat and group traffic from im-bench devices that behave like the SDK (--sdk-devices: they retry
failed sends with the same client_msg_id, hold by seq, sync on gaps and after reconnects), and
meanwhile random faults, one at a time: a gateway or a logic node killed (-9) or drained (SIGTERM)
and restarted, Redis restarted with and without its data, MariaDB restarted, the Kafka broker
stopped and started, and the network between tiers cut, reset or slowed (TCP fault proxies,
fault_proxy.py). Each fault is logged with when it came, what it hit and how long until the
cluster answered again (every logic node ready with every dependency up, every gateway ready).
At the end the traffic drains, every device syncs and is checked, and the tool prints the fault
log and the tally. Exit status: 0 when no acknowledged message was lost, shown twice or out of
order, every device converged and every tier came back; 1 when not; 2 when the run could not be
carried out.

Usage: tests/chaos/chaos.py [--faults N] [--duration SEC] [--rate R] [--connections C] ...
(--help lists the options; tests/chaos/README.md says what each check means).

Everything it starts stops with it: the servers and im-bench die with this process
(PR_SET_PDEATHSIG, as tests/deploy/deploy_harness.py ties them); Redis, MariaDB and Kafka
daemonize, so scripts/stop-when-gone.sh, started detached beside them, stops them (and whatever
process group is left) should this process be SIGKILLed.
"""

import argparse
import collections
import dataclasses
import json
import os
import pathlib
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
from process_ties import dies_with_this_process  # noqa: E402

from fault_proxy import FaultProxies  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVICES = ROOT / "deploy" / "local" / "services.sh"
STOP_WHEN_GONE = ROOT / "scripts" / "stop-when-gone.sh"
LOGIC_CONFIG = ROOT / "deploy" / "local" / "logic.yaml"
GATEWAY_CONFIG = ROOT / "deploy" / "local" / "gateway.yaml"
TOKEN_SECRET = "dev-secret-change-me"  # logic.yaml's token_secret, im-bench's default --secret

GATEWAYS = ("gw-1", "gw-2")
LOGICS = ("logic-1", "logic-2")
# The links a TCP fault proxy stands on: the gateways' calls to each logic node, each logic node's
# connections to Redis and to MariaDB. (Not Kafka: its clients go where the broker's metadata
# points them, past a proxy; the broker's own stop covers it. Nor logic's pushes to the gateways.)
LINKS = tuple([f"gateways>{logic}" for logic in LOGICS]
              + [f"{logic}>{backend}" for logic in LOGICS for backend in ("redis", "mariadb")])
FAULT_KINDS = ("gateway-kill", "gateway-drain", "logic-kill", "logic-drain", "redis-restart",
               "redis-wipe", "mariadb-restart", "kafka-restart", "net-partition", "net-reset",
               "net-delay")

READY_TIMEOUT_SEC = 120   # a server's ready line, a restarted backend, the cluster after a fault
STOP_TIMEOUT_SEC = 40     # a drained server exits within its drain/grace time (set below)
MAX_OUTAGE_SEC = 3.0      # a stopped part stays down a random 0..this before its restart
PARTITION_SEC = (1.0, 8.0)  # a cut link stays cut a random time in this range
DELAY_MS = (100, 1000)    # a slowed link adds this much each way ...
DELAY_SEC = (5.0, 10.0)   # ... for this long
WARMUP_SEC = 5.0          # clean traffic before the first fault
QUIET_TAIL_SEC = 15.0     # no fault starts this close to the end of the traffic
AFTER_BACK_SEC = 5.0      # the window after a tier came back whose failed sends are counted
POLL_SEC = 0.2
# A gateway's drain and logic's shutdown, shortened from the production defaults (25 s, 10 s
# spread; 10 s grace) so that a SIGTERM fault takes seconds, not half a minute.
GATEWAY_DRAIN_ENV = {"IM_GATEWAY_DRAIN_TIMEOUT_MS": "10000", "IM_GATEWAY_GOAWAY_SPREAD_MS": "3000"}
LOGIC_DRAIN_ENV = {"IM_LOGIC_SHUTDOWN_GRACE_MS": "5000"}
SANITIZER_LINE = re.compile(r"ERROR: (Address|Leak|Thread)Sanitizer|runtime error: ")
PROGRESS_LINE = re.compile(
    r"^\[\s*(?P<t>[\d.]+)s\] (?P<phase>.+?)\s+online (?P<online>\d+)/(?P<devices>\d+) "
    r"fail \d+ \| sent (?P<sent>\d+) \(\d+/s\) acked (?P<acked>\d+) err (?P<errors>\d+) "
    r"retried (?P<retried>\d+) \| delivered (?P<delivered>\d+)")


class RunError(Exception):
    """The run cannot go on (a server does not start, a port is taken): exit status 2."""


class Interrupted(Exception):
    """SIGINT or SIGTERM: stop, clean up, report what was done."""


def say(message):
    print(f"chaos: {message}", flush=True)


# ---- processes that die with us ----



class OrphanGuard:
    """Stops what outlives a SIGKILLed run: scripts/stop-when-gone.sh, detached, waits for this
    process to be gone, then SIGKILLs the process groups listed in a file (the servers and the
    im-bench runs with their forked workers, which PR_SET_PDEATHSIG does not reach) and stops the
    services. The file lists the live groups only, rewritten on every change."""

    def __init__(self, directory, services_env):
        self.groups_file = directory / "process-groups"
        self.groups = set()
        self._write()
        script = (f'for g in $(cat "{self.groups_file}" 2>/dev/null); do '
                  f'kill -KILL -- "-$g" 2>/dev/null; done; exec "{SERVICES}" stop')
        with open(directory / "stop-when-gone.log", "ab") as log:
            self.watcher = subprocess.Popen(
                [str(STOP_WHEN_GONE), str(os.getpid()), "--", "bash", "-c", script],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=services_env, start_new_session=True)

    def add(self, pgid):
        self.groups.add(pgid)
        self._write()

    def remove(self, pgid):
        self.groups.discard(pgid)
        self._write()

    def _write(self):
        tmp = self.groups_file.with_suffix(".tmp")
        tmp.write_text("".join(f"{g}\n" for g in sorted(self.groups)))
        tmp.replace(self.groups_file)

    def release(self):
        """Everything was stopped in order: the watcher ends without doing anything."""
        if self.watcher.poll() is None:
            self.watcher.terminate()
            self.watcher.wait()


class Child:
    """A process of ours in a process group of its own (a Ctrl-C reaches only this script, which
    stops everything in order), SIGKILLed should this process die, its output in a log file that
    keeps every start of the part."""

    def __init__(self, name, argv, env, log_path, guard):
        self.name, self.argv, self.env, self.log_path, self.guard = name, argv, env, log_path, guard
        self.popen = None
        self.started = None  # time.monotonic() of the last start
        self.log_offset = 0  # where this start's output begins in the log

    def start(self):
        with open(self.log_path, "ab") as log:
            log.write(f"==== chaos: {self.name} started {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.log_offset = log.tell()
            self.started = time.monotonic()
            self.popen = subprocess.Popen(self.argv, env=self.env, cwd=ROOT,
                                          stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, process_group=0,
                                          preexec_fn=dies_with_this_process())
        self.guard.add(self.popen.pid)

    def running(self):
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig):
        if self.running():
            self.popen.send_signal(sig)

    def wait_exit(self, timeout):
        """The exit status, or None when it did not exit in time."""
        try:
            status = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.reaped()
        return status

    def reaped(self):
        self.guard.remove(self.popen.pid)

    def kill_group(self):
        """SIGKILL to the whole group (im-bench's workers too), then reap. Not once reaped: the
        group's id may be another's by then."""
        if self.popen is None or self.popen.returncode is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait()
        self.reaped()

    def output_since_start(self):
        with open(self.log_path, "rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    def log_tail(self, lines=20):
        return "".join(self.output_since_start().splitlines(True)[-lines:])


# ---- the cluster ----

class Ports:
    """Every port of the run, from one base (31000 by default: clear of the test services' 2xxxx
    and the default local cluster's 1xxxx, 7xxx and 9xxx): base+1..base+45."""

    def __init__(self, base):
        self.base = base
        self.redis, self.mysql, self.kafka, self.kafka_controller = range(base + 1, base + 5)
        self.redis_tls = base + 5

    def logic(self, index):
        """(grpc, metrics) of logic node `index` (0 for logic-1)."""
        first = self.base + 10 + 2 * index
        return first, first + 1

    def gateway(self, index):
        """(client, grpc, metrics) of gateway `index` (0 for gw-1)."""
        first = self.base + 20 + 10 * index
        return first, first + 1, first + 2

    def link(self, name):
        """The port of the fault proxy on link `name` (LINKS)."""
        return self.base + 40 + LINKS.index(name)

    def all(self):
        ports = [self.redis, self.mysql, self.kafka, self.kafka_controller, self.redis_tls]
        for index in range(len(LOGICS)):
            ports.extend(self.logic(index))
        for index in range(len(GATEWAYS)):
            ports.extend(self.gateway(index))
        ports.extend(self.link(name) for name in LINKS)
        return ports


def taken_port(ports):
    """A port of the run something else holds, with why; None when every one is free."""
    for port in ports.all():
        with socket.socket() as s:
            # As the servers bind: a port in TIME_WAIT from an earlier run is free for them.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError as error:
                return f"{port} ({error})"
    return None


def check_ports_free(ports):
    # The connections of a run killed a moment ago may hold a port for a few seconds more.
    deadline = time.monotonic() + 15
    while (taken := taken_port(ports)) and time.monotonic() < deadline:
        time.sleep(1)
    if taken:
        raise RunError(f"port {taken} is taken; pick another --port-base")


def http_get(port, path):
    """(status, body) of http://127.0.0.1:port/path, or (None, reason) when nothing answered."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (OSError, urllib.error.URLError) as error:
        return None, str(error)


def clean_environment():
    """Ours without IM_* variables: one left in the caller's shell (IM_GATEWAY_LISTEN, ...) would
    move a server of this run; every setting of the run is given below."""
    return {k: v for k, v in os.environ.items() if not k.startswith("IM_")}


class Cluster:
    """Redis, MariaDB and Kafka from deploy/local/services.sh, two im-logic and two im-gateways
    from deploy/local's configs, all on the run's own ports and var dir, with a fault proxy on
    each link of LINKS. (deploy/local/cluster is not used: it puts gw-2 on fixed ports, which the
    default local cluster holds.)"""

    def __init__(self, build_dir, var_dir, ports, guard_dir):
        self.build_dir, self.var_dir, self.ports = build_dir, var_dir, ports
        self.logs = var_dir / "chaos" / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        base = clean_environment()
        self.services_env = {**base, "IM_VAR_DIR": str(var_dir),
                             "IM_LOCAL_REDIS_PORT": str(ports.redis),
                             "IM_LOCAL_REDIS_TLS_PORT": str(ports.redis_tls),
                             "IM_MYSQL_PORT": str(ports.mysql),
                             "IM_LOCAL_KAFKA_PORT": str(ports.kafka),
                             "IM_LOCAL_KAFKA_CONTROLLER_PORT": str(ports.kafka_controller)}
        self.guard = OrphanGuard(guard_dir, self.services_env)
        self.proxies = FaultProxies()
        targets = {"redis": ports.redis_tls, "mariadb": ports.mysql}
        for index, logic in enumerate(LOGICS):
            targets[logic] = ports.logic(index)[0]
        for name in LINKS:
            self.proxies.add(name, ports.link(name), targets[name.split(">")[1]])
        ca = str(var_dir / "tls" / "ca.pem")  # services.sh's development CA (dev-tls.sh)
        self.logics = {}
        for index, name in enumerate(LOGICS):
            grpc, metrics = ports.logic(index)
            env = {**base, **LOGIC_DRAIN_ENV,
                   "IM_LOGIC_ID": name,
                   "IM_LOGIC_NODE_NUMBER": str(index + 1),
                   "IM_LOGIC_GRPC_LISTEN": f"127.0.0.1:{grpc}",
                   "IM_LOGIC_METRICS_LISTEN": f"127.0.0.1:{metrics}",
                   "IM_REDIS_ADDRESS": f"127.0.0.1:{ports.link(f'{name}>redis')}",
                   "IM_REDIS_TLS_CA_FILE": ca,
                   "IM_MYSQL_PORT": str(ports.link(f"{name}>mariadb")),
                   "IM_MYSQL_TLS_CA_FILE": ca,
                   "IM_KAFKA_BROKERS": f"127.0.0.1:{ports.kafka}",
                   "IM_KAFKA_TLS_CA_FILE": ca}
            self.logics[name] = Child(name, [str(build_dir / "logic" / "im-logic"), "--config",
                                             str(LOGIC_CONFIG)], env, self.logs / f"{name}.log",
                                      self.guard)
        # gRPC's own list of addresses; round_robin spreads the gateways' streams over both.
        logic_target = "ipv4:" + ",".join(f"127.0.0.1:{ports.link(f'gateways>{logic}')}"
                                          for logic in LOGICS)
        self.gateways = {}
        for index, name in enumerate(GATEWAYS):
            client, grpc, metrics = ports.gateway(index)
            env = {**base, **GATEWAY_DRAIN_ENV, "IM_GATEWAY_ID": name,
                   "IM_GATEWAY_LISTEN": f"127.0.0.1:{client}",
                   "IM_GATEWAY_GRPC_LISTEN": f"127.0.0.1:{grpc}",
                   "IM_GATEWAY_METRICS_LISTEN": f"127.0.0.1:{metrics}",
                   "IM_GATEWAY_LOGIC_TARGET": logic_target}
            self.gateways[name] = Child(name, [str(build_dir / "gateway" / "im-gateway"),
                                               "--config", str(GATEWAY_CONFIG)], env,
                                        self.logs / f"{name}.log", self.guard)
        # Parts this script stopped on purpose (a fault): their exit is not a crash.
        self.stopped_on_purpose = set()

    def servers(self):
        return [*self.logics.values(), *self.gateways.values()]

    def gateway_addresses(self):
        return ",".join(f"127.0.0.1:{self.ports.gateway(i)[0]}" for i in range(len(GATEWAYS)))

    # -- services --

    def services(self, action, *names):
        """deploy/local/services.sh ACTION NAMES, in a session of its own (mariadbd, which it
        leaves running in the background, must not share a terminal's Ctrl-C with us)."""
        with open(self.logs / "services.log", "ab") as log:
            log.write(f"==== chaos: services.sh {action} {' '.join(names)} "
                      f"{time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            result = subprocess.run([str(SERVICES), action, *names], env=self.services_env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True, timeout=READY_TIMEOUT_SEC + 60,
                                    check=False)
        if result.returncode != 0:
            raise RunError(f"services.sh {action} {' '.join(names)} failed "
                           f"(exit {result.returncode}); see {self.logs / 'services.log'}")

    def wipe_redis_data(self):
        """Its append-only files and snapshot: a Redis that lost its disk (users.conf stays, it is
        written again at start anyway)."""
        redis_dir = self.var_dir / "redis"
        shutil.rmtree(redis_dir / "appendonlydir", ignore_errors=True)
        for pattern in ("*.rdb", "*.aof"):
            for path in redis_dir.glob(pattern):
                path.unlink()

    # -- servers --

    def start_server(self, child):
        self.stopped_on_purpose.discard(child.name)
        child.start()
        kind = "im-logic" if child.name in self.logics else "im-gateway"
        deadline = time.monotonic() + READY_TIMEOUT_SEC
        while not re.search(rf"^{kind} ready ", child.output_since_start(), re.MULTILINE):
            if not child.running():
                raise RunError(f"{child.name} exited ({child.popen.returncode}) before it was "
                               f"ready; the end of {child.log_path}:\n{child.log_tail()}")
            if time.monotonic() > deadline:
                raise RunError(f"{child.name} was not ready within {READY_TIMEOUT_SEC} s; "
                               f"see {child.log_path}")
            time.sleep(POLL_SEC)

    def up(self):
        say(f"starting Redis, MariaDB and Kafka in {self.var_dir} (ports {self.ports.redis}, "
            f"{self.ports.mysql}, {self.ports.kafka})")
        self.services("start")
        for child in self.servers():
            self.start_server(child)
        self.wait_healthy(time.monotonic() + READY_TIMEOUT_SEC)
        logic_ports = ", ".join(str(self.ports.logic(i)[0]) for i in range(len(LOGICS)))
        say(f"cluster up: logic on {logic_ports}, gateways on {self.gateway_addresses()}, "
            f"fault proxies on {self.ports.link(LINKS[0])}-{self.ports.link(LINKS[-1])}")

    def down(self):
        for child in self.servers():
            if child.popen is not None:
                child.kill_group()
        try:
            self.proxies.stop()
        finally:
            self.services("stop")  # whatever the proxies' end: nothing may be left running

    # -- health --

    def unhealthy(self):
        """What keeps the cluster from answering, or "" when nothing does: every logic node ready
        with every dependency up (its /readyz names one that is down as "degraded"), every
        gateway ready (not draining, logic reached)."""
        for index, name in enumerate(LOGICS):
            status, body = http_get(self.ports.logic(index)[1], "/readyz")
            if status != 200 or "degraded" in body:
                return f"{name}: {status} {body.strip()[:200]}"
        for index, name in enumerate(GATEWAYS):
            status, body = http_get(self.ports.gateway(index)[2], "/readyz")
            if status != 200:
                return f"{name}: {status} {body.strip()[:200]}"
        return ""

    def wait_healthy(self, deadline):
        """True once the cluster answers again; False at the deadline."""
        while time.monotonic() < deadline:
            if not self.unhealthy():
                return True
            time.sleep(POLL_SEC)
        return False

    def crashed(self):
        """Servers that exited without a fault stopping them."""
        return [c for c in self.servers()
                if not c.running() and c.name not in self.stopped_on_purpose]


# ---- faults ----

@dataclasses.dataclass
class Fault:
    at: float                # seconds into the traffic's send phase
    kind: str
    target: str
    down_sec: float = 0.0    # how long the part was away (stopped until restarted)
    back_sec: float | None = None  # fault start -> the cluster answered again; None: never
    note: str = ""
    # Sends that failed (retried or final) while the tier was away, and within AFTER_BACK_SEC
    # after it was back (from im-bench's progress lines: a second's resolution).
    failed_while_down: int = 0
    failed_after_back: int = 0
    started: float = 0.0     # time.monotonic()


class FaultInjector:
    """Carries out one fault of a kind, restarting what it stopped; the caller then waits for the
    cluster to answer again."""

    def __init__(self, cluster, rng):
        self.cluster, self.rng = cluster, rng

    def inject(self, fault):
        action = getattr(self, "_" + fault.kind.replace("-", "_"))
        action(fault)

    def _outage(self):
        time.sleep(self.rng.uniform(0, MAX_OUTAGE_SEC))

    def _restart_server(self, fault, child, sig):
        stopped = time.monotonic()
        self.cluster.stopped_on_purpose.add(child.name)
        child.signal(sig)
        status = child.wait_exit(STOP_TIMEOUT_SEC)
        if status is None:
            fault.note = f"did not exit within {STOP_TIMEOUT_SEC} s of {sig.name}; SIGKILL"
            child.kill_group()
        else:
            fault.note = f"exited {status} after {time.monotonic() - stopped:.1f} s"
        if sig == signal.SIGKILL:
            self._outage()
        self.cluster.start_server(child)
        fault.down_sec = time.monotonic() - stopped

    def _gateway_kill(self, fault):
        fault.target = self.rng.choice(GATEWAYS)
        self._restart_server(fault, self.cluster.gateways[fault.target], signal.SIGKILL)

    def _gateway_drain(self, fault):
        fault.target = self.rng.choice(GATEWAYS)
        self._restart_server(fault, self.cluster.gateways[fault.target], signal.SIGTERM)

    def _logic_kill(self, fault):
        fault.target = self.rng.choice(LOGICS)
        self._restart_server(fault, self.cluster.logics[fault.target], signal.SIGKILL)

    def _logic_drain(self, fault):
        fault.target = self.rng.choice(LOGICS)
        self._restart_server(fault, self.cluster.logics[fault.target], signal.SIGTERM)

    def _restart_service(self, fault, name, between=None):
        fault.target = name
        stopped = time.monotonic()
        self.cluster.services("stop", name)
        if between is not None:
            between()
        self._outage()
        self.cluster.services("start", name)
        fault.down_sec = time.monotonic() - stopped

    def _redis_restart(self, fault):
        self._restart_service(fault, "redis")
        fault.note = "SIGTERM: Redis writes its append-only file and keeps its data"

    def _redis_wipe(self, fault):
        self._restart_service(fault, "redis", between=self.cluster.wipe_redis_data)
        fault.note = "append-only files and snapshot deleted before the start: no data"

    def _mariadb_restart(self, fault):
        self._restart_service(fault, "mariadb")

    def _kafka_restart(self, fault):
        self._restart_service(fault, "kafka")

    def _net_partition(self, fault):
        fault.target = self.rng.choice(LINKS)
        seconds = self.rng.uniform(*PARTITION_SEC)
        proxies = self.cluster.proxies
        proxies.cut(fault.target)
        time.sleep(seconds)
        proxies.heal(fault.target)
        fault.down_sec = seconds
        fault.note = f"nothing passed for {seconds:.1f} s; {proxies.connections(fault.target)} " \
                     "connections held open"

    def _net_reset(self, fault):
        fault.target = self.rng.choice(LINKS)
        reset = self.cluster.proxies.reset(fault.target)
        fault.note = f"{reset} connections reset (RST both ways)"

    def _net_delay(self, fault):
        fault.target = self.rng.choice(LINKS)
        delay_ms, seconds = self.rng.randint(*DELAY_MS), self.rng.uniform(*DELAY_SEC)
        proxies = self.cluster.proxies
        proxies.set_delay(fault.target, delay_ms / 1000)
        time.sleep(seconds)
        proxies.set_delay(fault.target, 0)
        fault.down_sec = seconds
        fault.note = f"{delay_ms} ms added each way for {seconds:.1f} s"


# ---- traffic ----

class Traffic:
    """One im-bench run: its progress lines (stderr) are read as it goes, its --json report at the
    end."""

    def __init__(self, name, bench, args, out_dir, guard):
        self.name = name
        self.json_path = out_dir / f"{name}.json"
        argv = [str(bench), *args, "--sdk-devices", "--json", str(self.json_path)]
        self.child = Child(name, argv, clean_environment(), out_dir / f"{name}.progress", guard)
        # (time.monotonic() of the line, progress dict): im-bench's own clock (its "t", from
        # its start), not when we read the line: no line is read while a fault is carried out.
        self.samples = []
        self._lines_read = 0
        self.exit_code = None

    def start(self):
        say(f"{self.name}: {' '.join(self.child.argv[1:])}")
        # The table goes to stdout; the progress lines (stderr) to the log we read.
        self.child.start()

    def poll(self):
        complete = self.child.output_since_start().split("\n")[:-1]  # the last may be partial
        new, self._lines_read = complete[self._lines_read:], len(complete)
        for line in new:
            match = PROGRESS_LINE.match(line)
            if match:
                sample = {k: v if k == "phase" else float(v)
                          for k, v in match.groupdict().items()}
                self.samples.append((self.child.started + sample["t"], sample))
        if self.exit_code is None and not self.child.running() and self.child.popen is not None:
            self.exit_code = self.child.popen.returncode
            self.child.reaped()

    def phase(self):
        return self.samples[-1][1]["phase"] if self.samples else "starting"

    def failed_sends_between(self, start, end):
        """Sends answered with an error (retried or final) between two times."""
        def failed_at(moment):
            before = [s for when, s in self.samples if when <= moment]
            return before[-1]["errors"] + before[-1]["retried"] if before else 0
        return int(failed_at(end) - failed_at(start))

    def report(self):
        try:
            return json.loads(self.json_path.read_text())
        except (OSError, ValueError):
            return None


def bench_table(traffic):
    """im-bench's table (it printed it to stdout, which went to the progress log)."""
    text = traffic.child.output_since_start()
    start = text.find("im-bench ")
    return text[start:] if start >= 0 else ""


# ---- the run ----

class ChaosRun:
    def __init__(self, args, build_dir, var_dir):
        self.args = args
        self.rng = random.Random(args.seed)
        self.out = var_dir / "chaos"
        self.out.mkdir(parents=True, exist_ok=True)
        self.ports = Ports(args.port_base)
        check_ports_free(self.ports)
        self.cluster = Cluster(build_dir, var_dir, self.ports, self.out)
        self.injector = FaultInjector(self.cluster, self.rng)
        self.faults = []
        self.crashes = []      # (seconds into traffic, part, exit status)
        self.traffic = []
        self.send_start = None
        self.failed_tier = None
        bench = build_dir / "bench" / "im-bench"
        common = ["--gateways", self.cluster.gateway_addresses(), "--secret", TOKEN_SECRET,
                  "--duration", str(args.duration), "--drain", str(args.drain)]
        # Chat pairs, a share of them dropped on purpose besides the faults (they resume).
        self.traffic.append(Traffic("chat", bench, [
            "reconnect", *common, "--connections", str(args.connections), "--rate", str(args.rate),
            "--fraction", "0.1", "--reconnect-rate", "1", "--resume"], self.out,
            self.cluster.guard))
        if args.group_connections > 0:
            self.traffic.append(Traffic("group", bench, [
                "group", *common, "--connections", str(args.group_connections),
                "--group-size", str(args.group_size), "--senders", "4",
                "--rate", str(args.group_rate)], self.out, self.cluster.guard))

    def seconds_in(self):
        return time.monotonic() - self.send_start if self.send_start else 0.0

    def poll(self):
        for t in self.traffic:
            t.poll()
        for child in self.cluster.crashed():
            status = child.popen.returncode
            child.reaped()
            say(f"{child.name} exited on its own ({status}); the end of its log:\n"
                f"{child.log_tail()}")
            self.crashes.append((self.seconds_in(), child.name, status))
            self.cluster.start_server(child)

    def wait(self, seconds):
        """Sleeps while watching the traffic and the servers."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll()
            time.sleep(min(POLL_SEC, max(0.0, deadline - time.monotonic())))

    def start_traffic(self):
        for t in self.traffic:
            t.start()
        deadline = time.monotonic() + READY_TIMEOUT_SEC
        while not all(t.phase() == "send" for t in self.traffic):
            self.poll()
            finished = [t for t in self.traffic if t.exit_code is not None]
            if finished:
                raise RunError(f"{finished[0].name} ended before sending (exit "
                               f"{finished[0].exit_code}); see {finished[0].child.log_path}")
            if time.monotonic() > deadline:
                raise RunError("the devices did not log in (and set up their groups) within "
                               f"{READY_TIMEOUT_SEC} s")
            time.sleep(POLL_SEC)
        self.send_start = time.monotonic()
        say("traffic flowing; faults start in a few seconds")

    def next_kinds(self):
        """The kinds in rounds, each round shuffled: every kind comes once before any comes
        twice, so that even a short run meets all of them."""
        while True:
            round_ = list(self.args.kinds)
            self.rng.shuffle(round_)
            yield from round_

    def pause_before(self, number, last_stop):
        """The wait before fault `number`: --gap (0.5-1.5 x), shortened when the faults left
        would not fit before `last_stop` at the pace of those so far."""
        drawn = self.rng.uniform(0.5, 1.5) * self.args.gap
        faults_left = self.args.faults - number + 1
        took = [f.back_sec for f in self.faults if f.back_sec is not None]
        typical = sum(took) / len(took) if took else 0.0
        room = (last_stop - time.monotonic()) / faults_left - typical
        return max(0.5, min(drawn, room))

    def inject_faults(self):
        kinds = self.next_kinds()
        self.wait(WARMUP_SEC)
        last_stop = self.send_start + self.args.duration - QUIET_TAIL_SEC
        for number in range(1, self.args.faults + 1):
            if number > 1:
                self.wait(self.pause_before(number, last_stop))
            if time.monotonic() >= last_stop:
                say(f"--duration {self.args.duration} s left no room for faults "
                    f"{number}..{self.args.faults}")
                return
            fault = Fault(at=self.seconds_in(), kind=next(kinds), target="")
            fault.started = time.monotonic()
            self.faults.append(fault)
            self.injector.inject(fault)
            if self.cluster.wait_healthy(time.monotonic() + READY_TIMEOUT_SEC):
                fault.back_sec = time.monotonic() - fault.started
            else:
                self.failed_tier = f"after fault {number} ({fault.kind} {fault.target}): " \
                                   f"{self.cluster.unhealthy()}"
            say(f"fault {number}/{self.args.faults} at {fault.at:6.1f} s: {fault.kind} "
                f"{fault.target}: back after {format_seconds(fault.back_sec)} ({fault.note})  | "
                f"{self.status_line()}")
            if self.failed_tier:
                say(f"the cluster did not come back {self.failed_tier}; no more faults")
                return

    def status_line(self):
        parts = []
        for t in self.traffic:
            if t.samples:
                s = t.samples[-1][1]
                parts.append(f"{t.name}: sent {s['sent']:.0f} acked {s['acked']:.0f} "
                             f"failed {s['errors'] + s['retried']:.0f}")
        return "; ".join(parts)

    def wait_for_traffic(self):
        # The send phase, the drain, the final sync and the convergence wait (30 s), and margin.
        limit = self.args.duration + self.args.drain + 120
        deadline = self.send_start + limit
        next_status = time.monotonic() + 10
        while any(t.exit_code is None for t in self.traffic):
            if time.monotonic() > deadline:
                raise RunError(f"im-bench did not finish within {limit} s of the send phase's "
                               "start")
            self.wait(POLL_SEC)
            if time.monotonic() >= next_status:
                next_status += 10
                phases = ", ".join(f"{t.name} {t.phase()}" for t in self.traffic)
                say(f"{self.seconds_in():6.1f} s: {phases} | {self.status_line()}")

    def measure_failed_sends(self):
        for number, fault in enumerate(self.faults):
            if fault.back_sec is None:
                continue
            back = fault.started + fault.back_sec
            # The window after ends where the next fault starts: its failures are its own.
            after = back + AFTER_BACK_SEC
            if number + 1 < len(self.faults):
                after = min(after, self.faults[number + 1].started)
            fault.failed_while_down = sum(t.failed_sends_between(fault.started, back)
                                          for t in self.traffic)
            fault.failed_after_back = sum(t.failed_sends_between(back, after)
                                          for t in self.traffic)

    def sanitizer_reports(self):
        found = []
        for path in sorted(self.cluster.logs.glob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if SANITIZER_LINE.search(line):
                    found.append(f"{path.name}: {line.strip()}")
        return found


def format_seconds(value):
    return "never" if value is None else f"{value:.1f} s"


# ---- the report ----

def counter(report, name):
    return int(report["counters"].get(name, 0)) if report else 0


def print_fault_log(run):
    print("\nFault log (at: seconds into the traffic; back: until every logic node and gateway "
          "were ready with every dependency up; failed sends: retried or final, while away / "
          f"within {AFTER_BACK_SEC:.0f} s after, or until the next fault)")
    print(f"  {'#':>3} {'at':>7}  {'kind':<16} {'target':<16} {'away':>7} {'back':>7} "
          f"{'failed':>7} {'after':>6}  note")
    for number, f in enumerate(run.faults, 1):
        print(f"  {number:>3} {f.at:>6.1f}s  {f.kind:<16} {f.target:<16} {f.down_sec:>6.1f}s "
              f"{format_seconds(f.back_sec):>7} {f.failed_while_down:>7} "
              f"{f.failed_after_back:>6}  {f.note}")
    for at, name, status in run.crashes:
        print(f"  crash {at:>6.1f}s  {name} exited on its own with {status} (restarted)")


def print_traffic_tally(name, r):
    c = collections.defaultdict(int, r["counters"])
    # The codes sends failed with before their retry ("send_UNAVAILABLE": 12, ...).
    codes = {k[len("send_"):]: v for k, v in r.get("refusals", {}).items() if k.startswith("send_")}
    print(f"  {name:<6} sent       {c['sent']} messages, acknowledged {c['acked']} "
          f"({c['acked_unique']} distinct), failed for good {c['send_errors']}, "
          f"unanswered {c['unanswered']}")
    print(f"  {name:<6} failures   {c['errors_retried']} sends retried after an error "
          f"{json.dumps(codes)}, {c['refused_and_resent']} refused for overload and resent, "
          f"{c['resent']} resent after a drop")
    print(f"  {name:<6} delivered  {c['delivered']} of {c['expected_deliveries']} expected; "
          f"drops {c['planned_drops']} planned / {c['unplanned_drops']} by faults, "
          f"gap syncs {c['gap_syncs']}, found by the final sync {c['found_by_final_sync']}")
    delivery = r.get("latency_ms", {}).get("delivery_us")
    if delivery:
        print(f"  {name:<6} latency    delivery p50 {delivery['p50']:.0f} ms, p99 "
              f"{delivery['p99']:.0f} ms, max {delivery['max']:.0f} ms (from the scheduled send)")
    # A device holds what came above a gap until the gap fills or Sync reports a hole (as the SDK
    # does), so a seq written late is shown in order, only late: a figure, not a verdict.
    print(f"  {name:<6} overtaken  {c['overtaken']} pushes came below a seq pushed before, "
          f"{c['held_back_past_window']} of them more than {r['params']['reorder_window_ms']} ms "
          f"later (held back, shown in order), longest wait "
          f"{r['max']['reorder_wait_ms']} ms")


def print_tally(run, reports):
    """Prints the tally; returns the reasons the run failed (empty: it passed)."""
    failures = []
    by_kind = collections.Counter(f.kind for f in run.faults)
    backs = [f.back_sec for f in run.faults if f.back_sec is not None]
    print("\nTally")
    print(f"  faults             {len(run.faults)} of {run.args.faults} asked: "
          + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
    if backs:
        print(f"  back after         median {sorted(backs)[len(backs) // 2]:.1f} s, "
              f"longest {max(backs):.1f} s")
    if len(run.faults) < run.args.faults:
        failures.append(f"only {len(run.faults)} of {run.args.faults} faults were injected")
    if run.failed_tier:
        failures.append(f"a tier did not come back {run.failed_tier}")
    if run.crashes:
        failures.append(f"{len(run.crashes)} servers exited on their own")
    totals = collections.Counter()
    for t in run.traffic:
        r = reports.get(t.name)
        if r is None:
            failures.append(f"{t.name}: no im-bench report (exit {t.exit_code}); see "
                            f"{t.child.log_path}")
            continue
        if t.exit_code not in (0, 1):
            failures.append(f"{t.name}: im-bench exited {t.exit_code} (could not run)")
        print_traffic_tally(t.name, r)
        totals["lost"] += counter(r, "missing")
        totals["late"] += counter(r, "acked_after_drain")
        totals["pushed_twice"] += counter(r, "duplicates")
        totals["stored_twice"] += counter(r, "stored_twice")
        totals["order"] += counter(r, "reordered")
        totals["not_converged"] += counter(r, "not_converged")
        if r.get("errors"):
            print(f"  {t.name:<6} errors     {json.dumps(r['errors'])}")
        for sample in r.get("missing_samples", [])[:5]:
            print(f"  {t.name:<6} missing    {sample}")
    missing_reports = sum(1 for t in run.traffic if reports.get(t.name) is None)
    print("  verdict" + (f" (without {missing_reports} im-bench reports)"
                         if missing_reports else ""))
    verdict = [
        ("acknowledged messages lost", totals["lost"]),
        ("acknowledged, reached a device only after the drain", totals["late"]),
        ("shown twice: stored under two seqs", totals["stored_twice"]),
        ("out of order: came after Sync reported its seq a hole", totals["order"]),
        ("devices not converged", totals["not_converged"]),
    ]
    for label, value in verdict:
        print(f"    {label:<56} {value}")
        if value > 0:
            failures.append(f"{value} {label}")
    # Pushes are at least once (a retry pushes again, Kafka redelivers after a rebalance); a
    # device drops a seq it holds (DESIGN.md section 8, item 2), so a repeat is shown once.
    print(f"    {'pushed again under the same seq (dropped by the device)':<56} "
          f"{totals['pushed_twice']}")
    sanitizer = run.sanitizer_reports()
    if sanitizer:
        failures.append(f"{len(sanitizer)} sanitizer reports in the server logs")
        for line in sanitizer[:10]:
            print(f"    sanitizer: {line}")
    return failures


# ---- main ----

def find_build_dir(given):
    candidates = [pathlib.Path(given)] if given else [ROOT / "build" / "release",
                                                      ROOT / "build" / "test"]
    for candidate in candidates:
        candidate = candidate if candidate.is_absolute() else ROOT / candidate
        binaries = [candidate / "logic" / "im-logic", candidate / "gateway" / "im-gateway",
                    candidate / "bench" / "im-bench"]
        if all(b.exists() for b in binaries):
            return candidate
    raise RunError(f"no build with im-logic, im-gateway and im-bench in "
                   f"{', '.join(str(c) for c in candidates)} (ninja -C BUILD_DIR im-logic "
                   f"im-gateway im-bench)")


def parse_args():
    parser = argparse.ArgumentParser(
        description="A chaos run: random faults under chat and group traffic, then a check of "
                    "every device (tests/chaos/README.md).")
    parser.add_argument("--faults", type=int, default=20, help="faults to inject [20]")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds of traffic [20 + faults x (gap + 10)]")
    parser.add_argument("--rate", type=float, default=1000, help="chat messages/s [1000]")
    parser.add_argument("--connections", type=int, default=2000, help="chat devices [2000]")
    parser.add_argument("--group-connections", type=int, default=200,
                        help="group members, all online (0: no group traffic) [200]")
    parser.add_argument("--group-size", type=int, default=20, help="members per group [20]")
    parser.add_argument("--group-rate", type=float, default=20, help="group messages/s [20]")
    parser.add_argument("--gap", type=float, default=4,
                        help="mean seconds between a tier's return and the next fault [4]")
    parser.add_argument("--drain", type=float, default=30,
                        help="seconds deliveries may take after the traffic [30]")
    parser.add_argument("--kinds", default=",".join(FAULT_KINDS),
                        help=f"fault kinds to draw from [{','.join(FAULT_KINDS)}]")
    parser.add_argument("--seed", type=int, default=None, help="random seed [a fresh one]")
    parser.add_argument("--build-dir", default=None,
                        help="where the binaries are [build/release, else build/test]")
    parser.add_argument("--var-dir", default=None,
                        help="data, logs and reports (must not exist) [a new /tmp/im-chaos-*]")
    parser.add_argument("--port-base", type=int, default=31000,
                        help="ports base+1..base+45 [31000]")
    parser.add_argument("--keep", action="store_true",
                        help="keep the var dir (it is kept anyway when the run fails)")
    args = parser.parse_args()
    args.kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in args.kinds if k not in FAULT_KINDS]
    if unknown or not args.kinds:
        parser.error(f"--kinds: unknown {unknown}; known: {', '.join(FAULT_KINDS)}")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    if args.duration is None:
        args.duration = 20 + args.faults * (args.gap + 10)
    return args


def make_var_dir(given):
    if given is None:
        return pathlib.Path(tempfile.mkdtemp(prefix="im-chaos-", dir="/tmp"))
    path = pathlib.Path(given).resolve()
    if path.exists():
        raise RunError(f"--var-dir {path} exists; a run starts from nothing")
    path.mkdir(parents=True)
    return path


def on_signal(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


def main():
    args = parse_args()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        build_dir = find_build_dir(args.build_dir)
        var_dir = make_var_dir(args.var_dir)
    except RunError as error:
        say(str(error))
        return 2
    say(f"seed {args.seed}, {args.faults} faults over {args.duration:.0f} s of traffic, build "
        f"{build_dir}, var dir {var_dir}")
    run = None
    status, failures, stage = 2, [], "setup"
    try:
        run = ChaosRun(args, build_dir, var_dir)
        run.cluster.up()
        run.start_traffic()
        stage = "faults"
        run.inject_faults()
        stage = "drain"
        say("faults done; waiting for the traffic to end, drain and converge")
        run.wait_for_traffic()
        stage = "report"
    except RunError as error:
        say(f"cannot go on ({stage}): {error}")
    except Interrupted as reason:
        say(f"interrupted ({reason}) during {stage}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if run is not None:
            for t in run.traffic:
                if t.child.popen is not None and t.exit_code is None:
                    t.child.kill_group()
                    t.exit_code = t.child.popen.returncode
    if run is not None:
        run.measure_failed_sends()
        reports = {t.name: t.report() for t in run.traffic}
        for t in run.traffic:
            table = bench_table(t)
            if table:
                print(f"\n{t.name}: {table.rstrip()}")
        print_fault_log(run)
        failures = print_tally(run, reports)
        if stage != "report":
            failures.append(f"the run stopped during {stage}")
        status = 1 if failures else 0
        if stage == "setup":
            status = 2
        say("stopping the cluster")
        try:
            run.cluster.down()
        finally:
            run.cluster.guard.release()
    keep = args.keep or status != 0
    if keep:
        say(f"kept {var_dir} (logs in {var_dir / 'chaos' / 'logs'}, im-bench reports in "
            f"{var_dir / 'chaos'})")
    else:
        shutil.rmtree(var_dir, ignore_errors=True)
    print("\nPASSED" if status == 0 else "\nFAILED:\n  " + "\n  ".join(failures or ["setup"]),
          flush=True)
    print(f"(seed {args.seed}: tests/chaos/chaos.py --seed {args.seed} ... draws the same "
          "faults, not the same timings)")
    return status


if __name__ == "__main__":
    sys.exit(main())
