#!/usr/bin/env bash
# Copies the runtime jars of the Apache Kafka broker named in deploy/kafka/pom.xml into one
# directory, for deploy/local/kafka.sh (java -cp "$IM_LOCAL_KAFKA_LIBS/*"). The first run downloads them
# from Maven Central into the local Maven repository (~/.m2), which is the cache between runs; a
# directory already filled from the same pom (its stamp holds the pom's sha256) is left alone, so
# a second run returns at once without starting Maven.
#
# Usage: deploy/kafka/fetch-jars.sh
# Environment (defaults in brackets):
#   IM_LOCAL_KAFKA_LIBS  where the jars go  [<repo>/.cache/kafka-libs]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
POM="$ROOT/deploy/kafka/pom.xml"
LIBS="${IM_LOCAL_KAFKA_LIBS:-$ROOT/.cache/kafka-libs}"
STAMP="$LIBS/.pom.sha256"

log() { printf 'fetch-jars: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

want="$(sha256sum "$POM" | cut -d' ' -f1)"
fresh() { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; }
fresh && exit 0

command -v mvn >/dev/null || die "mvn not found (Debian: apt-get install maven)"
mkdir -p "$(dirname "$LIBS")"
# One fetch at a time (the tests and a local cluster may start together); whoever waited finds
# the jars there.
exec 9>"$LIBS.lock"
flock 9
fresh && exit 0

log "copying the Kafka broker's jars into $LIBS (from ~/.m2; the first time from Maven Central)"
started=$SECONDS
tmp="$(mktemp -d "$LIBS.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# (Debian's Maven 3.8 writes colour resets even in batch mode; sed drops them.)
mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
  -DoutputDirectory="$tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2 ||
  die "mvn dependency:copy-dependencies failed (output above)"
ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "mvn copied no kafka_2.13 jar into $tmp"
echo "$want" >"$tmp/.pom.sha256"
# Swap the new directory in whole: a broker starting meanwhile sees the old jars or the new ones.
rm -rf "$LIBS.old"
[ -d "$LIBS" ] && mv "$LIBS" "$LIBS.old"
mv "$tmp" "$LIBS"
rm -rf "$LIBS.old"
log "$(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS ($((SECONDS - started))s)"
