#!/usr/bin/env python3
"""A logic node added while gateways run gets client traffic (issue 21, item 3: an HPA scale-up).

What Kubernetes does, on one machine: gateways find logic through a name that DNS resolves to
every logic pod (the headless Service); a scale-up adds a pod's address to that name. Here a DNS
server of the test's own (dnslib) answers `logic.im.test` with 127.0.0.1, and later with
127.0.0.1 and 127.0.0.2; the gateway's target is `dns://<that server>/logic.im.test:PORT`
(gRPC's c-ares resolver asks it), and the two logic nodes listen on PORT at those two addresses.

  1. logic-1 and a gateway start; im-bench chats through the gateway for the whole test;
  2. logic-2 starts and DNS lists it;
  3. logic-2 must read client requests from the gateway's streams (im_logic_ingress_entries_total)
     within the deadline: logic's maximum connection age makes the gateway reconnect, which
     resolves the name again (gRPC re-resolves at most every 30 s), and its streams end gracefully
     within the age, reopening over both nodes;
  4. im-bench reports no error, and no message missing, duplicated or out of order, while
     streams end and reopen under it.

With --max-age-ms 0 (connections live for ever) logic-2 gets nothing: run so with
--expect-failure as the check's self-test (tests/deploy/CMakeLists.txt).

Usage: scale_up_test.py --gateway PATH --logic PATH --bench PATH [--max-age-ms N]
                        [--expect-failure REGEX ...]
Needs IM_TEST_REDIS, IM_TEST_MYSQL, IM_TEST_KAFKA (scripts/test.sh) and deploy/k8s/fetch-tools.sh.
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time

from dnslib import QTYPE, RR, A
from dnslib.server import BaseResolver, DNSServer
from prometheus_client.parser import text_string_to_metric_families

from deploy_harness import (TEST_TOKEN_SECRET, Failure, Process, free_port, http_get,
                            logic_overrides, report, test_backends)

LOGIC_NAME = "logic.im.test."
SECOND_LOGIC_HOST = "127.0.0.2"
# gRPC's DNS resolver asks again at most every 30 s (GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS),
# then streams move within one age; a margin on top for a slow, shared machine.
DEADLINE_S = 30 + 3 + 20
MAX_AGE_GRACE_MS = 2000
SHUTDOWN_TIMEOUT_S = 40


class LogicDns(BaseResolver):
    """Answers A queries for LOGIC_NAME with the addresses set; anything else: no answer."""

    def __init__(self):
        self._lock = threading.Lock()
        self._addresses = []

    def set_addresses(self, addresses):
        with self._lock:
            self._addresses = list(addresses)

    def resolve(self, request, handler):
        reply = request.reply()
        question = request.q
        if str(question.qname).lower() == LOGIC_NAME and question.qtype == QTYPE.A:
            with self._lock:
                addresses = list(self._addresses)
            for address in addresses:
                reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=1))
        return reply


def fields_of(ready_line):
    return dict(f.split("=", 1) for f in ready_line.split() if "=" in f)


def ingress_entries(metrics_port):
    """im_logic_ingress_entries_total of a logic node, or None when it does not answer."""
    status, body = http_get(metrics_port, "/metrics")
    if status != 200:
        return None
    for family in text_string_to_metric_families(body):
        if family.name == "im_logic_ingress_entries":
            return sum(sample.value for sample in family.samples
                       if sample.name == "im_logic_ingress_entries_total")
    return None


class Node:
    """A binary started with a clean IM_* environment plus `env`, ready once it says so."""

    def __init__(self, name, binary, env, ready_prefix):
        clean = {k: v for k, v in os.environ.items() if not k.startswith("IM_")}
        self.name = name
        self.process = Process([binary], {**clean, **env}, name)
        self.fields = fields_of(self.process.wait_for_line(ready_prefix, 90))

    def stop(self):
        took = self.process.terminate(SHUTDOWN_TIMEOUT_S)
        print(f"{self.name} exited 0 {took:.1f} s after SIGTERM")


def start_logic(binary, number, host, port, backends, run_id, max_age_ms):
    env = logic_overrides(backends, run_id)
    env.update({
        "IM_LOGIC_ID": f"logic-{number}",
        "IM_LOGIC_NODE_NUMBER": str(number),
        "IM_LOGIC_GRPC_LISTEN": f"{host}:{port}",
        "IM_LOGIC_METRICS_LISTEN": "127.0.0.1:0",
        "IM_LOGIC_MAX_CONNECTION_AGE_MS": str(max_age_ms),
        "IM_LOGIC_MAX_CONNECTION_AGE_GRACE_MS": str(MAX_AGE_GRACE_MS),
    })
    return Node(f"logic-{number}", binary, env, "im-logic ready")


def run(args, work):
    run_id = f"scale-{os.getpid()}"
    backends = test_backends()
    dns = LogicDns()
    dns.set_addresses(["127.0.0.1"])
    dns_port = free_port()
    server = DNSServer(dns, port=dns_port, address="127.0.0.1")
    server.start_thread()
    nodes, bench = [], None
    try:
        grpc_port = free_port()
        nodes.append(start_logic(args.logic, 1, "127.0.0.1", grpc_port, backends, run_id, args.max_age_ms))
        gateway = Node("gateway", args.gateway, {
            "IM_GATEWAY_ID": "gw-scale",
            "IM_GATEWAY_LISTEN": "127.0.0.1:0",
            "IM_GATEWAY_GRPC_LISTEN": "127.0.0.1:0",
            "IM_GATEWAY_METRICS_LISTEN": "127.0.0.1:0",
            "IM_GATEWAY_WORKERS": "2",
            "IM_GATEWAY_LOGIC_TARGET": f"dns://127.0.0.1:{dns_port}/{LOGIC_NAME[:-1]}:{grpc_port}",
        }, "im-gateway ready")
        nodes.append(gateway)

        report_path = os.path.join(work, "bench.json")
        bench_seconds = DEADLINE_S + 10
        bench = Process([args.bench, "chat", "--gateways",
                         f"127.0.0.1:{gateway.fields['client_port']}",
                         "--secret", TEST_TOKEN_SECRET, "--run-id", run_id,
                         "--connections", "8", "--rate", "40",
                         "--duration", str(bench_seconds), "--json", report_path,
                         "--no-progress"], dict(os.environ), "im-bench")

        time.sleep(3)  # logic-1 alone for a while: the gateway's connection is older than logic-2
        nodes.append(start_logic(args.logic, 2, SECOND_LOGIC_HOST, grpc_port, backends, run_id,
                                 args.max_age_ms))
        dns.set_addresses(["127.0.0.1", SECOND_LOGIC_HOST])
        added = time.monotonic()
        second_metrics = int(nodes[-1].fields["metrics_port"])
        entries = 0
        while time.monotonic() - added < DEADLINE_S:
            entries = ingress_entries(second_metrics) or 0
            if entries > 0:
                break
            time.sleep(0.5)
        if entries == 0:
            raise Failure(f"logic-2 got no client request within {DEADLINE_S} s of joining DNS "
                          f"(max connection age {args.max_age_ms} ms)")
        print(f"logic-2 read its first client requests {time.monotonic() - added:.1f} s after "
              "it joined DNS")

        status = bench.popen.wait(timeout=bench_seconds + 60)
        with open(report_path) as file:
            result = json.load(file)
        counters = result.get("counters", {})
        summary = {k: counters.get(k) for k in ("sent", "acked", "delivered", "missing",
                                                "duplicates", "reordered")}
        print(f"im-bench: exit {status}, {summary}, errors {result.get('errors')}")
        if status != 0 or result.get("errors"):
            raise Failure(f"im-bench failed while streams moved (exit {status}): {summary}, "
                          f"errors {result.get('errors')}; its log:\n{bench.log_tail()}")
        for node in (nodes[1], nodes[2], nodes[0]):  # the gateway first
            node.stop()
    finally:
        if bench is not None:
            bench.cleanup()
        for node in reversed(nodes):
            node.process.cleanup()
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--logic", required=True)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--max-age-ms", type=int, default=3000,
                        help="logic.max_connection_age_ms of both nodes")
    parser.add_argument("--expect-failure", action="append", metavar="REGEX",
                        help="a self-test: pass when a failure matches each REGEX")
    args = parser.parse_args()
    failures = []
    with tempfile.TemporaryDirectory(prefix="im-scale-up-") as work:
        try:
            run(args, work)
        except Failure as failure:
            failures.append(str(failure))
    return report(failures, "a logic node added by a scale-up gets traffic", args.expect_failure)


if __name__ == "__main__":
    sys.exit(main())
