#!/usr/bin/env python3
"""Checks testssl.sh's JSON findings against the client TLS policy (docs/security.md, "TLS").

The policy: TLS 1.3 and TLS 1.2 offered, nothing older; only forward-secret AEAD suites (no NULL,
anonymous, export, low, 3DES/IDEA or CBC "average" suites); forward secrecy offered; session
tickets resume; and no finding at MEDIUM severity or above, except those that describe the
certificate rather than the server (a development CA has no CRL or OCSP responder).

Usage: check_testssl.py FINDINGS.json [--expect-failure REGEX ...]
With --expect-failure the check must fail and print a line matching each REGEX (the checker's
own test, on a fixture that breaks the policy).
"""
import argparse
import json
import re
import sys

# (id, what its finding must start with)
REQUIRED = [
    ("SSLv2", "not offered"),
    ("SSLv3", "not offered"),
    ("TLS1", "not offered"),
    ("TLS1_1", "not offered"),
    ("TLS1_2", "offered"),
    ("TLS1_3", "offered"),
    ("cipherlist_NULL", "not offered"),
    ("cipherlist_aNULL", "not offered"),
    ("cipherlist_EXPORT", "not offered"),
    ("cipherlist_LOW", "not offered"),
    ("cipherlist_3DES_IDEA", "not offered"),
    ("cipherlist_AVERAGE", "not offered"),
    ("cipherlist_STRONG", "offered"),
    ("PFS", "offered"),
    ("sessionresumption_ticket", "supported"),
    ("secure_client_renego", "not vulnerable"),
    ("heartbleed", "not vulnerable"),
]
# TLS 1.3 suites, or TLS 1.2 ECDHE suites with AES-GCM or ChaCha20-Poly1305 (OpenSSL names).
AEAD_SUITE = re.compile(r"^(TLS_AES_\d+_GCM_SHA\d+|TLS_CHACHA20_POLY1305_SHA256|"
                        r"ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305))$")
SEVERE = {"MEDIUM", "HIGH", "CRITICAL"}
# Findings about the certificate's own contents, which the test's development CA decides.
CERTIFICATE_PROPERTIES = {"cert_revocation", "cert_ocspRevoked", "cert_crlDistributionPoints",
                          "cert_ocspURL", "OCSP_stapling", "DNS_CAArecord"}


def problems(findings):
    by_id = {}
    for finding in findings:
        by_id.setdefault(finding["id"], []).append(finding)
    found = []
    for finding_id, expected in REQUIRED:
        if finding_id not in by_id:
            found.append(f"{finding_id}: testssl.sh reported nothing")
            continue
        text = by_id[finding_id][0]["finding"]
        if not text.startswith(expected):
            found.append(f"{finding_id}: '{text}', expected '{expected}'")
    for finding in findings:
        if finding["severity"] in SEVERE and finding["id"] not in CERTIFICATE_PROPERTIES:
            found.append(f"{finding['id']}: {finding['severity']}: {finding['finding']}")
    for finding in by_id.get("PFS_ciphers", []):
        for cipher in finding["finding"].split():
            if not AEAD_SUITE.match(cipher):
                found.append(f"PFS_ciphers: {cipher} is not an ECDHE suite with an AEAD cipher")
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("findings")
    parser.add_argument("--expect-failure", action="append", default=[])
    args = parser.parse_args()
    with open(args.findings) as f:
        found = problems(json.load(f))
    for line in found:
        print(f"check_testssl: {line}")
    if args.expect_failure:
        missing = [r for r in args.expect_failure if not any(re.search(r, l) for l in found)]
        for regex in missing:
            print(f"check_testssl: expected a failure matching {regex!r}")
        return 1 if missing or not found else 0
    if found:
        return 1
    print(f"check_testssl: ok ({len(findings_ids(args.findings))} findings checked)")
    return 0


def findings_ids(path):
    with open(path) as f:
        return [finding["id"] for finding in json.load(f)]


if __name__ == "__main__":
    sys.exit(main())
