#!/usr/bin/python3
"""Parses a Prometheus text exposition on stdin with the reference parser (prometheus_client).

Prints one line per metric family, "<name> <type> <number of samples>", and exits 0; on a parse
error prints the error on stderr and exits 1. The metrics test compares the families it expects.
"""
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    if not text.strip():
        print("empty exposition", file=sys.stderr)
        return 1
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as error:  # the parser raises ValueError and friends on malformed input
        print(f"not valid Prometheus text format: {error!r}", file=sys.stderr)
        return 1
    for family in families:
        print(f"{family.name} {family.type} {len(family.samples)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
