#!/usr/bin/env python3
"""Fails when a rendered overlay points Kubernetes at something the binaries do not serve.

For each overlay (deploy/k8s/overlays/dev, prod), rendered with kustomize:
  - statically: every Service, PodDisruptionBudget and PodMonitor selects a workload, every
    HorizontalPodAutoscaler targets one, every port a Service, probe or PodMonitor names is a
    declared container port; the gateway's logic target is the headless logic Service on logic's
    gRPC port, and the gateway advertises its own gRPC port on the pod IP; pods run as non-root;
    terminationGracePeriodSeconds covers each binary's drain (from the effective config);
  - live: the real im-logic and im-gateway start with the rendered ConfigMap and environment
    (only listening ports, backends and the gateway's logic target changed for this machine),
    every declared container port is one the binary listens on, every probe's path answers on its
    port with HTTP 200 or 503 (served; 404 or a refused connection fail), every Service port
    accepts connections, the Prometheus scrape targets (annotations, PodMonitors) answer with
    parseable metrics, /readyz turns 200 against the test services, and each binary exits 0 on
    SIGTERM within its terminationGracePeriodSeconds.

Usage: probe_test.py --gateway PATH --logic PATH
Needs IM_TEST_REDIS, IM_TEST_MYSQL, IM_TEST_KAFKA (scripts/test.sh) and deploy/k8s/fetch-tools.sh.
"""

import argparse
import pathlib
import socket
import sys

from prometheus_client.parser import text_string_to_metric_families

from deploy_harness import (OVERLAYS, Failure, Manifests, cleanup_cluster, http_get,
                            labels_match, report, split_host_port, start_cluster)

# Margin on top of the time a binary may legitimately take after SIGTERM.
SHUTDOWN_MARGIN_S = 5


def ms_to_s(value):
    return int(value) / 1000


def shutdown_budget_s(pod, config):
    """How long the binary may take after SIGTERM with this config (gateway/gateway.cc drain,
    logic/main.cc shutdown), without the margin."""
    if pod.binary == "im-gateway":
        # Clients get drain_timeout_ms to leave; then calls to logic in flight finish.
        return ms_to_s(config.get("gateway.drain_timeout_ms", 25000)) + ms_to_s(
            config.get("gateway.logic_timeout_ms", 5000))
    # Unready for shutdown_delay_ms, calls in flight get shutdown_grace_ms, then the last pushes
    # (push_timeout_ms) and the writer's last MySQL batch (mysql.timeout_ms).
    return sum(ms_to_s(config.get(key, default)) for key, default in (
        ("logic.shutdown_delay_ms", 0), ("logic.shutdown_grace_ms", 10000),
        ("logic.push_timeout_ms", 2000), ("mysql.timeout_ms", 5000)))


def check_static(m):
    failures = []
    pods = m.pods()

    def check(fn):
        try:
            fn()
        except Failure as failure:
            failures.append(str(failure))

    for pod in pods:
        check(lambda pod=pod: pod.effective_config(strict=True))

        def security(pod=pod):
            pod_context = pod.spec.get("securityContext", {})
            context = {**pod_context, **pod.container.get("securityContext", {})}
            if context.get("runAsNonRoot") is not True or not context.get("runAsUser"):
                raise Failure(f"{pod.where()}: must run as non-root (runAsNonRoot: true and a "
                              f"non-zero runAsUser), has {context}")
        check(security)

        def grace(pod=pod):
            config = pod.effective_config()
            budget = shutdown_budget_s(pod, config) + SHUTDOWN_MARGIN_S
            grace_s = pod.spec.get("terminationGracePeriodSeconds", 30)
            if grace_s < budget:
                raise Failure(f"{pod.where()}: terminationGracePeriodSeconds {grace_s} is "
                              f"shorter than its drain after SIGTERM plus {SHUTDOWN_MARGIN_S} s "
                              f"({budget:g} s from its config): Kubernetes would kill it mid-drain")
        check(grace)

        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = pod.container.get(kind)
            if probe is None:
                if kind != "startupProbe":
                    failures.append(f"{pod.where()}: no {kind}")
                continue
            handler = probe.get("httpGet") or probe.get("tcpSocket")
            if handler is None:
                failures.append(f"{pod.where()}: {kind} is neither httpGet nor tcpSocket: "
                                f"{sorted(probe)}")
                continue
            check(lambda pod=pod, handler=handler, kind=kind:
                  pod.resolve_port(handler["port"], kind))

    for service in m.of_kind("Service"):
        name = service["metadata"]["name"]
        selected = m.workloads_selected_by(service["spec"].get("selector"))
        if not selected:
            failures.append(f"{m.overlay}: Service {name} selects no workload")
        for pod in (p for p in pods if p.workload in selected):
            for port in service["spec"]["ports"]:
                check(lambda pod=pod, port=port, name=name: pod.resolve_port(
                    port.get("targetPort", port["port"]), f"Service {name} port {port['port']}"))

    for pdb in m.of_kind("PodDisruptionBudget"):
        if not m.workloads_selected_by(pdb["spec"]["selector"].get("matchLabels")):
            failures.append(f"{m.overlay}: PodDisruptionBudget {pdb['metadata']['name']} selects "
                            "no workload")
    for hpa in m.of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        if m.get(target["kind"], target["name"]) is None:
            failures.append(f"{m.overlay}: HorizontalPodAutoscaler {hpa['metadata']['name']} "
                            f"targets {target['kind']}/{target['name']}, which is not rendered")
    for monitor in m.of_kind("PodMonitor"):
        selected = m.workloads_selected_by(monitor["spec"]["selector"].get("matchLabels"))
        if not selected:
            failures.append(f"{m.overlay}: PodMonitor {monitor['metadata']['name']} selects no "
                            "workload")
        for pod in (p for p in pods if p.workload in selected):
            for endpoint in monitor["spec"]["podMetricsEndpoints"]:
                check(lambda pod=pod, endpoint=endpoint: pod.resolve_port(
                    endpoint["port"], f"PodMonitor {monitor['metadata']['name']}"))

    def logic_target():
        gateway = next(p for p in pods if p.binary == "im-gateway")
        logic = next(p for p in pods if p.binary == "im-logic")
        target = gateway.effective_config().get("gateway.logic_target", "")
        if not target.startswith("dns:///"):
            raise Failure(f"{gateway.where()}: gateway.logic_target '{target}' is not a dns:/// "
                          "target (the gateway could not round-robin over logic pods)")
        host, port = split_host_port(target[len("dns:///"):], "gateway.logic_target")
        labels = host.split(".")
        service = m.get("Service", labels[0])
        if service is None:
            raise Failure(f"{gateway.where()}: gateway.logic_target names Service {labels[0]}, "
                          "which is not rendered")
        if len(labels) > 1 and labels[1] != service["metadata"].get("namespace"):
            raise Failure(f"{gateway.where()}: gateway.logic_target names namespace {labels[1]}, "
                          f"the Service is in {service['metadata'].get('namespace')}")
        if service["spec"].get("clusterIP") != "None":
            raise Failure(f"{gateway.where()}: Service {labels[0]} is not headless: its name "
                          "resolves to one virtual IP and round robin sees a single address")
        if logic.workload not in m.workloads_selected_by(service["spec"].get("selector")):
            raise Failure(f"Service {labels[0]} does not select the logic pods")
        matching = [p for p in service["spec"]["ports"] if p["port"] == port]
        if not matching:
            raise Failure(f"{gateway.where()}: gateway.logic_target port {port} is not a port of "
                          f"Service {labels[0]}")
        container_port = logic.resolve_port(matching[0].get("targetPort", port),
                                            f"Service {labels[0]}")
        grpc_port = split_host_port(logic.effective_config()["logic.grpc_listen"],
                                    "logic.grpc_listen")[1]
        if container_port != grpc_port:
            raise Failure(f"{gateway.where()}: gateway.logic_target reaches logic's port "
                          f"{container_port}, but LogicService listens on {grpc_port}")
        config = gateway.effective_config()
        advertised = config.get("gateway.advertise_address", "")
        env = gateway.environment()
        pod_ip = next((v["name"] for v in gateway.container.get("env", [])
                       if v.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
                       == "status.podIP"), None)
        grpc = split_host_port(config["gateway.grpc_listen"], "gateway.grpc_listen")[1]
        if not advertised or pod_ip is None or advertised != f"{env[pod_ip]}:{grpc}":
            raise Failure(f"{gateway.where()}: gateway.advertise_address must be the pod IP and "
                          f"the GatewayService port {grpc} (logic pushes there), is "
                          f"'{advertised}'")
    check(logic_target)
    return failures


def scrape_ok(port, path, what):
    status, body = http_get(port, path)
    if status != 200:
        raise Failure(f"{what}: GET {path} answered {status}: {body.strip()[:200]}")
    try:
        families = list(text_string_to_metric_families(body))
    except ValueError as error:
        raise Failure(f"{what}: {path} is not Prometheus text format: {error}") from error
    if not families:
        raise Failure(f"{what}: {path} holds no metrics")


def check_live(m, started):
    failures = []

    def check(fn):
        try:
            fn()
        except Failure as failure:
            failures.append(str(failure))

    for local in started.values():
        pod = local.pod
        for port, name in pod.container_ports().items():
            check(lambda port=port, name=name, local=local: local.local_port(port))
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = pod.container.get(kind)
            if probe is None:
                continue

            def probe_answers(probe=probe, kind=kind, local=local, pod=pod):
                if "httpGet" in probe:
                    get = probe["httpGet"]
                    port = local.local_port(pod.resolve_port(get["port"], kind))
                    status, body = http_get(port, get.get("path", "/"))
                    if status not in (200, 503):
                        raise Failure(f"{pod.where()}: {kind} GET {get.get('path', '/')} on port "
                                      f"{get['port']} answered {status} ({body.strip()[:200]}); "
                                      "200 or 503 expected")
                else:
                    port = local.local_port(pod.resolve_port(probe["tcpSocket"]["port"], kind))
                    with socket.create_connection(("127.0.0.1", port), timeout=3):
                        pass
            check(probe_answers)
        annotations = pod.workload["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") == "true":
            check(lambda local=local, pod=pod, annotations=annotations: scrape_ok(
                local.local_port(pod.resolve_port(annotations.get("prometheus.io/port", ""),
                                                  "annotation prometheus.io/port")),
                annotations.get("prometheus.io/path", "/metrics"),
                f"{pod.where()}: prometheus.io annotations"))
        for monitor in m.of_kind("PodMonitor"):
            if not labels_match(monitor["spec"]["selector"].get("matchLabels"), pod.pod_labels):
                continue
            for endpoint in monitor["spec"]["podMetricsEndpoints"]:
                check(lambda local=local, pod=pod, endpoint=endpoint: scrape_ok(
                    local.local_port(pod.resolve_port(endpoint["port"], "PodMonitor")),
                    endpoint.get("path", "/metrics"),
                    f"{pod.where()}: PodMonitor {monitor['metadata']['name']}"))
        for service in m.of_kind("Service"):
            if not labels_match(service["spec"].get("selector"), pod.pod_labels):
                continue
            for port in service["spec"]["ports"]:
                def connects(local=local, pod=pod, port=port, service=service):
                    what = f"Service {service['metadata']['name']} port {port['port']}"
                    local_port = local.local_port(
                        pod.resolve_port(port.get("targetPort", port["port"]), what))
                    try:
                        with socket.create_connection(("127.0.0.1", local_port), timeout=3):
                            pass
                    except OSError as error:
                        raise Failure(f"{pod.where()}: {what}: {error}") from error
                check(connects)
    return failures


def run_overlay(overlay, binaries, directory=None):
    m = Manifests(overlay, directory)
    failures = check_static(m)
    started = {}
    try:
        started = start_cluster(m, binaries, f"probe-{overlay}")
        for binary, metrics_key in (("im-logic", "logic.metrics_listen"),
                                    ("im-gateway", "gateway.metrics_listen")):
            try:
                started[binary].wait_ready(metrics_key)
            except Failure as failure:
                failures.append(str(failure))
        failures += check_live(m, started)
        for binary in ("im-gateway", "im-logic"):
            local = started[binary]
            grace = local.pod.spec.get("terminationGracePeriodSeconds", 30)
            try:
                took = local.process.terminate(grace)
                print(f"{overlay}: {binary} exited 0 {took:.1f} s after SIGTERM "
                      f"(terminationGracePeriodSeconds {grace})")
            except Failure as failure:
                failures.append(f"{local.pod.where()}: {failure}")
    except Failure as failure:
        failures.append(str(failure))
    finally:
        cleanup_cluster(started)
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateway", required=True, help="the im-gateway binary")
    parser.add_argument("--logic", required=True, help="the im-logic binary")
    parser.add_argument("--overlay", help="check this kustomization directory instead of the "
                        "project's overlays (with --expect-failure: a broken fixture)")
    parser.add_argument("--expect-failure", action="append", metavar="REGEX",
                        help="self-test: pass only if a failure matches each REGEX")
    args = parser.parse_args()
    binaries = {"im-gateway": args.gateway, "im-logic": args.logic}
    overlays = [(o, None) for o in OVERLAYS]
    if args.overlay:
        overlays = [(pathlib.Path(args.overlay).name, args.overlay)]
    failures = []
    for overlay, directory in overlays:
        try:
            failures += run_overlay(overlay, binaries, directory)
        except Failure as failure:
            failures.append(str(failure))
    return report(failures, f"probes, ports and shutdown timing of {[o for o, _ in overlays]}",
                  args.expect_failure)


if __name__ == "__main__":
    sys.exit(main())
