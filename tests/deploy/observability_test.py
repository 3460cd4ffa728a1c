#!/usr/bin/env python3
"""Checks the Grafana dashboard and the Prometheus alert rules (deploy/observability) against
what the binaries really export.

  - the dashboard is JSON, every query (panels and template variables) parses as PromQL, and the
    alerts its descriptions name ("Alert: X") exist;
  - the rules file has Prometheus' rule-file structure (groups of alerts with expr, for, a
    severity label and a summary), unique alert names, and every expression parses;
  - every metric a query or rule selects is in the /metrics output of a running im-gateway and
    im-logic (started from the dev overlay's config, after two users exchanged messages through
    them so that per-method series exist), parsed with the Prometheus text-format parser; every
    label a selector matches on exists on that metric (or is a target label Prometheus adds), and
    every label value matched with = occurs.

Usage: observability_test.py --gateway PATH --logic PATH --chat-demo PATH
                             [--dashboard FILE --alerts FILE --expect-failure REGEX...]
  With --expect-failure: a self-test on broken fixtures (passes when each REGEX matches a problem).
Needs IM_TEST_REDIS, IM_TEST_MYSQL, IM_TEST_KAFKA (scripts/test.sh) and deploy/k8s/fetch-tools.sh.
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys

import promql_parser
import yaml
from prometheus_client.parser import text_string_to_metric_families

from deploy_harness import (ROOT, TEST_TOKEN_SECRET, Failure, Manifests, cleanup_cluster,
                            http_get, report, start_cluster)

DASHBOARD = ROOT / "deploy" / "observability" / "im-cluster-dashboard.json"
ALERTS = ROOT / "deploy" / "observability" / "alerts.yaml"
# Series Prometheus makes itself, not the binaries.
PROMETHEUS_METRICS = {"up"}
# Labels Prometheus attaches from the scrape target (PodMonitor / pod discovery).
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "endpoint", "service"}
SEVERITIES = {"critical", "warning", "info"}


def grafana_to_promql(query):
    """Grafana's variables replaced by values PromQL accepts (durations, label values)."""
    query = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", query)
    return re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*(:[a-z]+)?\}?", "x", query)


def dashboard_queries(dashboard):
    """(where, PromQL) of every panel target and query variable."""
    queries = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if "expr" in target:
                    queries.append((f"panel '{panel.get('title')}' target {target.get('refId')}",
                                    target["expr"]))
            walk(panel.get("panels", []))
    walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        # label_values(selector, label) and query_result(expr) are Grafana's, around PromQL.
        inner = re.fullmatch(r"\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\)\s*", query)
        inner = inner or re.fullmatch(r"\s*query_result\((.*)\)\s*", query)
        queries.append((f"variable '{variable.get('name')}'", inner.group(1) if inner else query))
    return queries


def selectors(where, expr):
    """[(metric name, [(label, op, value)])] of every vector selector in a PromQL expression."""
    try:
        ast = promql_parser.parse(grafana_to_promql(expr))
    except ValueError as error:
        raise Failure(f"{where}: not PromQL ({error}): {expr}") from error
    found = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            found.append((node.name, [(m.name, str(m.op).rsplit(".", 1)[-1], m.value)
                                      for m in node.matchers.matchers]))
        return True
    promql_parser.walk(ast, visit)
    if not found:
        raise Failure(f"{where}: selects no metric: {expr}")
    return found


def check_dashboard(path, alert_names):
    """Returns (failures, [(where, selectors)])."""
    failures, selected = [], []
    try:
        dashboard = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        return [f"{path}: not JSON: {error}"], []
    ids = []

    def walk(panels):
        for panel in panels:
            ids.append(panel.get("id"))
            for name in re.findall(r"\bAlerts?: ([A-Za-z, ]+)", panel.get("description", "")):
                for alert in re.findall(r"IM[A-Za-z]+", name):
                    if alert not in alert_names:
                        failures.append(f"dashboard panel '{panel.get('title')}' names alert "
                                        f"{alert}, which the rules do not define")
            walk(panel.get("panels", []))
    walk(dashboard.get("panels", []))
    if len(ids) != len(set(ids)):
        failures.append(f"dashboard: panel ids repeat: {sorted(ids, key=str)}")
    queries = dashboard_queries(dashboard)
    if not queries:
        failures.append("dashboard: no queries")
    for where, expr in queries:
        try:
            selected.append((f"dashboard {where}", selectors(where, expr)))
        except Failure as failure:
            failures.append(f"dashboard {failure}")
    print(f"dashboard: {len(ids)} panels, {len(queries)} queries")
    return failures, selected


def check_rules(path):
    """Returns (failures, [(where, selectors)], alert names)."""
    failures, selected, names = [], [], []
    try:
        rules = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        return [f"{path}: not YAML: {error}"], [], []
    groups = rules.get("groups") if isinstance(rules, dict) else None
    if not isinstance(groups, list) or not groups:
        return [f"{path}: no 'groups' list at the top"], [], []
    group_names = [g.get("name") for g in groups]
    if None in group_names or len(set(group_names)) != len(group_names):
        failures.append(f"{path.name}: group names missing or repeated: {group_names}")
    for group in groups:
        unknown = set(group) - {"name", "interval", "limit", "rules"}
        if unknown:
            failures.append(f"{path.name}: group {group.get('name')}: unknown keys {unknown}")
        for rule in group.get("rules") or []:
            name = rule.get("alert") or rule.get("record")
            where = f"{path.name}: {group.get('name')}/{name}"
            if ("alert" in rule) == ("record" in rule):
                failures.append(f"{where}: a rule has exactly one of 'alert' and 'record'")
            unknown = set(rule) - {"alert", "record", "expr", "for", "keep_firing_for", "labels",
                                   "annotations"}
            if unknown:
                failures.append(f"{where}: unknown keys {sorted(unknown)}")
            if not isinstance(rule.get("expr"), str):
                failures.append(f"{where}: no expr")
                continue
            try:
                selected.append((where, selectors(where, rule["expr"])))
            except Failure as failure:
                failures.append(str(failure))
            if "alert" not in rule:
                continue
            names.append(rule["alert"])
            if "for" in rule:
                try:
                    promql_parser.parse_duration(str(rule["for"]))
                except ValueError:
                    failures.append(f"{where}: 'for: {rule['for']}' is not a duration")
            if (rule.get("labels") or {}).get("severity") not in SEVERITIES:
                failures.append(f"{where}: labels.severity must be one of {sorted(SEVERITIES)}")
            if not (rule.get("annotations") or {}).get("summary"):
                failures.append(f"{where}: no annotations.summary")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        failures.append(f"{path.name}: alerts defined twice: {repeated}")
    print(f"alert rules: {len(names)} alerts in {len(groups)} groups")
    return failures, selected, names


def scrape(local, metrics_key):
    """{sample name: {label: {values}}} from the binary's /metrics, parsed as Prometheus text."""
    port = local.local_port(local.config_port(metrics_key))
    status, body = http_get(port, "/metrics")
    if status != 200:
        raise Failure(f"{local.pod.binary}: /metrics answered {status}: {body[:200]}")
    samples = {}
    try:
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                labels = samples.setdefault(sample.name, {})
                for label, value in sample.labels.items():
                    labels.setdefault(label, set()).add(value)
    except ValueError as error:
        raise Failure(f"{local.pod.binary}: /metrics is not Prometheus text format: "
                      f"{error}") from error
    return samples


def exchange_messages(chat_demo, local):
    """Two users log in and exchange messages through the gateway (per-method series appear)."""
    port = local.local_port(local.config_port("gateway.listen"))
    for _ in range(2):
        result = subprocess.run(
            [chat_demo, "--alice-port", str(port), "--bob-port", str(port),
             "--alice", "deploy-obs-alice", "--bob", "deploy-obs-bob",
             "--secret", TEST_TOKEN_SECRET, "--timeout-ms", "10000"],
            capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise Failure(f"im-chat-demo through the dev overlay's gateway failed "
                          f"({result.returncode}):\n{result.stdout}{result.stderr}\n"
                          f"gateway log:\n{local.process.log_tail()}")


def check_selected(selected, samples):
    failures = []
    for where, found in selected:
        for name, matchers in found:
            if name is None:
                failures.append(f"{where}: a selector without a metric name")
                continue
            if name in PROMETHEUS_METRICS:
                continue
            if name not in samples:
                failures.append(f"{where}: metric {name} is not exported by im-gateway or "
                                "im-logic")
                continue
            for label, op, value in matchers:
                if label in TARGET_LABELS:
                    continue
                if label not in samples[name]:
                    failures.append(f"{where}: {name} has no label '{label}' (it has "
                                    f"{sorted(samples[name]) or 'none'})")
                elif op == "Equal" and value not in samples[name][label]:
                    failures.append(f"{where}: {name}{{{label}=\"{value}\"}} matches nothing "
                                    f"(values seen: {sorted(samples[name][label])})")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--logic", required=True)
    parser.add_argument("--chat-demo", required=True, help="the im-chat-demo binary")
    parser.add_argument("--dashboard", type=pathlib.Path, default=DASHBOARD)
    parser.add_argument("--alerts", type=pathlib.Path, default=ALERTS)
    parser.add_argument("--expect-failure", action="append", metavar="REGEX")
    args = parser.parse_args()

    failures, rule_selectors, alert_names = check_rules(args.alerts)
    dashboard_failures, dashboard_selectors = check_dashboard(args.dashboard, set(alert_names))
    failures += dashboard_failures
    started = {}
    try:
        started = start_cluster(Manifests("dev"), {"im-gateway": args.gateway,
                                                   "im-logic": args.logic}, "observability")
        started["im-logic"].wait_ready("logic.metrics_listen")
        started["im-gateway"].wait_ready("gateway.metrics_listen")
        exchange_messages(args.chat_demo, started["im-gateway"])
        samples = scrape(started["im-logic"], "logic.metrics_listen")
        gateway_samples = scrape(started["im-gateway"], "gateway.metrics_listen")
        for name, labels in gateway_samples.items():
            samples.setdefault(name, {}).update(labels)
        print(f"scraped {len(samples)} sample names from im-gateway and im-logic")
        failures += check_selected(rule_selectors + dashboard_selectors, samples)
    except Failure as failure:
        failures.append(str(failure))
    finally:
        cleanup_cluster(started)
    return report(failures, f"{args.dashboard.name} and {args.alerts.name} against the binaries' "
                  "metrics", args.expect_failure)


if __name__ == "__main__":
    sys.exit(main())
