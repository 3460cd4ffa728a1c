#!/usr/bin/env bash
# Prints deploy/observability/alerts.yaml wrapped in a PrometheusRule, for clusters running the
# Prometheus Operator. The rules stay in one file, readable by a plain Prometheus as well.
# Usage: deploy/observability/prometheus-rule.sh [NAMESPACE] [RELEASE_LABEL] | kubectl apply -f -
#   NAMESPACE      where the PrometheusRule goes       [im]
#   RELEASE_LABEL  the `release` label your Prometheus selects rules by (kube-prometheus-stack:
#                  the Helm release name)              [prometheus]
set -euo pipefail

RULES="$(dirname "$0")/alerts.yaml"
cat <<EOF
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: im-cluster
  namespace: ${1:-im}
  labels:
    release: ${2:-prometheus}
spec:
EOF
# Comments dropped, everything else indented under spec.
grep -v '^#' "$RULES" | sed 's/^/  /'
