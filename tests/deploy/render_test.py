#!/usr/bin/env python3
"""Renders each overlay with kustomize and validates every object offline against the Kubernetes
API schemas (kubernetes-validate, strict: unknown fields are errors) of the oldest Kubernetes the
manifests support and of the newest the validator knows. Objects of kinds the validator has no
schema for fail too, except the custom resources listed in CUSTOM_KINDS, which probe_test.py
checks instead (selector, port, path).

Usage: render_test.py [--overlay DIR --expect-failure REGEX...]
  With --overlay and --expect-failure: a self-test on a broken fixture (passes when each REGEX
  matches a reported problem).
"""

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile

from deploy_harness import OVERLAYS, TOOLS, Failure, Manifests, report

# The oldest version the manifests need (a StatefulSet pod's apps.kubernetes.io/pod-index label,
# deploy/k8s/base/logic-statefulset.yaml) and the newest schemas the validator bundles.
KUBERNETES_VERSIONS = ["1.28.0", "1.37.0"]
# Custom resources rendered by a component (no schema bundled): PodMonitor (Prometheus Operator).
CUSTOM_KINDS = {"PodMonitor"}


def validator():
    path = TOOLS / "venv" / "bin" / "kubernetes-validate"
    if not path.exists():
        raise Failure(f"kubernetes-validate not found at {path}: run scripts/install-deps.sh "
                      "(or deploy/k8s/fetch-tools.sh)")
    return path


def validate(manifests):
    """Problems kubernetes-validate reports for the rendered overlay, per Kubernetes version."""
    problems = []
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=f"{manifests.overlay}-") as f:
        f.write(manifests.text)
        f.flush()
        for version in KUBERNETES_VERSIONS:
            result = subprocess.run(
                [str(validator()), "--strict", "--no-warn", "-k", version, f.name],
                capture_output=True, text=True, check=False)
            output = (result.stdout + result.stderr).replace(f.name, manifests.overlay)
            for line in output.splitlines():
                if line.startswith("INFO") or not line.strip():
                    continue
                problems.append(f"Kubernetes {version}: {line}")
            if result.returncode != 0 and not problems:
                problems.append(f"Kubernetes {version}: kubernetes-validate exited "
                                f"{result.returncode}: {output.strip()}")
            # --no-warn hides the "no schema" warning: name the kinds it skipped ourselves.
            checked = len(re.findall(r"^INFO .* passed for resource", output, re.M))
            failed = len([line for line in output.splitlines() if line.startswith("ERROR")])
            if checked + failed < len(manifests.objects):
                kinds = sorted({o["kind"] for o in manifests.objects} - CUSTOM_KINDS)
                skipped = len(manifests.objects) - checked - failed
                custom = len([o for o in manifests.objects if o["kind"] in CUSTOM_KINDS])
                if skipped > custom:
                    problems.append(f"Kubernetes {version}: {skipped} objects were not validated "
                                    f"(no schema; kinds rendered: {kinds})")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--overlay", help="a kustomization directory instead of the overlays")
    parser.add_argument("--expect-failure", action="append", metavar="REGEX")
    args = parser.parse_args()
    overlays = [(o, None) for o in OVERLAYS]
    if args.overlay:
        overlays = [(pathlib.Path(args.overlay).name, args.overlay)]
    failures = []
    for overlay, directory in overlays:
        try:
            manifests = Manifests(overlay, directory)
            problems = validate(manifests)
            failures += [f"{overlay}: {p}" for p in problems]
            if not problems:
                kinds = sorted({o["kind"] for o in manifests.objects})
                print(f"{overlay}: {len(manifests.objects)} objects valid against Kubernetes "
                      f"{' and '.join(KUBERNETES_VERSIONS)} ({', '.join(kinds)})")
        except Failure as failure:
            failures.append(str(failure))
    return report(failures, f"kustomize build + schema validation of {[o for o, _ in overlays]}",
                  args.expect_failure)


if __name__ == "__main__":
    sys.exit(main())
