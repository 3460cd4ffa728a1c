#!/usr/bin/env bash
# Runs one Apache Kafka broker (3.9, KRaft: a single node that is broker and controller at once,
# no ZooKeeper) on loopback, for the tests and the local cluster. services.sh starts it; so can a
# test harness.
#
# Usage:
#   deploy/local/kafka.sh run DIR PORT CONTROLLER_PORT
#       Runs the broker in the foreground: the java process replaces this script (exec), so whoever
#       spawned it holds the JVM's pid and stops it with SIGTERM (a controlled shutdown: under a
#       second when idle) or SIGKILL. Clients connect to 127.0.0.1:PORT; CONTROLLER_PORT is the
#       KRaft quorum's own listener. DIR holds server.properties (rewritten on every run), data/
#       (the topics; formatted the first time only, so a restart keeps them) and logs/server.log.
#       Fetches the broker's jars first when they are missing (deploy/kafka/fetch-jars.sh).
#   deploy/local/kafka.sh ready PORT
#       Exit status 0 when the broker on 127.0.0.1:PORT answers a Metadata request that lists a
#       live broker (it is registered with its controller and unfenced: topics can be created).
# Environment (defaults in brackets):
#   IM_LOCAL_KAFKA_LIBS      the broker's jars                          [<repo>/.cache/kafka-libs]
#   IM_LOCAL_KAFKA_HEAP      JVM heap, at most (-Xmx; it starts at 64m) [384m]
#   IM_LOCAL_KAFKA_JVM_OPTS  more JVM options, appended to ours         []
#   JAVA_HOME          the Java (17) to run; else java on PATH
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LIBS="${IM_LOCAL_KAFKA_LIBS:-$ROOT/.cache/kafka-libs}"
HEAP="${IM_LOCAL_KAFKA_HEAP:-384m}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
LOG4J_CONFIG="$ROOT/deploy/kafka/log4j.properties"

say() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
usage() {  # usage EXIT_STATUS
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit "$1"
}
absolute() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
is_port() {
  case "$1" in '' | *[!0-9]*) return 1 ;; *) [ "$1" -ge 1 ] && [ "$1" -le 65535 ] ;; esac
}

write_properties() {  # write_properties FILE DIR PORT CONTROLLER_PORT
  cat >"$1" <<EOF
# Written by deploy/local/kafka.sh on every start; edits here are lost.
# One node, broker and KRaft controller at once, on loopback.
node.id=1
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:$4
listeners=PLAINTEXT://127.0.0.1:$3,CONTROLLER://127.0.0.1:$4
advertised.listeners=PLAINTEXT://127.0.0.1:$3
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$2/data

# The project creates its topics itself (with the partition count it is configured with).
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
# One node: internal topics with one replica, and few partitions, so a consumer group's
# coordinator is there at once and its first join does not wait for a rebalance delay.
offsets.topic.num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0

# Small on 2 cores: few threads (defaults: 3 network, 8 io, 10 background threads), and a 16 MB
# log-cleaner buffer (default 128 MB, allocated on the heap) for the compacted offsets topic.
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
# Register, and get unfenced, sooner after start (default heartbeat: every 2 s). After a SIGKILL
# the restarted controller refuses the broker's new registration until the old one's session
# expires: 4 s rather than the default 9 s (still 8 heartbeats).
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=4000
EOF
}

cmd_run() {
  [ $# -eq 3 ] || usage 2
  local dir port cport
  dir="$(absolute "$1")" port="$2" cport="$3"
  is_port "$port" || die "bad port '$port'"
  is_port "$cport" || die "bad controller port '$cport'"
  [ "$port" != "$cport" ] || die "the broker and controller ports must differ"
  command -v "$JAVA" >/dev/null ||
    die "$JAVA not found (Debian: apt-get install openjdk-17-jre-headless)"
  mkdir -p "$dir/data" "$dir/logs"
  # Fast when the jars are there (a stamp compare); fills them from ~/.m2 or Maven Central if not.
  IM_LOCAL_KAFKA_LIBS="$LIBS" "$ROOT/deploy/kafka/fetch-jars.sh"
  write_properties "$dir/server.properties" "$dir" "$port" "$cport"

  local common=(-Dlog4j.configuration="file:$LOG4J_CONFIG" -Dkafka.logs.dir="$dir/logs"
    -Djava.awt.headless=true -cp "$LIBS/*")
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cluster_id
    cluster_id="$("$JAVA" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "${common[@]}" \
      kafka.tools.StorageTool random-uuid)" || die "StorageTool random-uuid failed"
    "$JAVA" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "${common[@]}" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >&2 ||
      die "StorageTool format failed (see $dir/logs/server.log)"
  fi

  local extra=()
  [ -z "${IM_LOCAL_KAFKA_JVM_OPTS:-}" ] || read -r -a extra <<<"$IM_LOCAL_KAFKA_JVM_OPTS"
  # Measured on 2 cores (docs/architecture.md, "Local services"): the serial collector and a heap
  # that starts at 64 MB and grows as needed keep the resident size near 160 MB (G1: ~15 MB more,
  # -Xms equal to -Xmx: ~75 MB more); C1 alone (TieredStopAtLevel=1) starts ~1.5 s sooner and saves
  # 30 MB, at some cost in peak throughput: a benchmark of the broker itself may want
  # IM_LOCAL_KAFKA_JVM_OPTS=-XX:TieredStopAtLevel=4 (the last option given wins).
  # -XX:+ExitOnOutOfMemoryError: a broker that ran out of heap dies rather than limps on.
  exec "$JAVA" -Xms64m -Xmx"$HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -XX:+ExitOnOutOfMemoryError \
    "${common[@]}" ${extra[@]+"${extra[@]}"} kafka.Kafka "$dir/server.properties"
}

# A Metadata request (v1, no topics); ready when the answer lists at least one live broker.
cmd_ready() {
  if [ $# -ne 1 ] || ! is_port "$1"; then usage 2; fi
  python3 - "$1" <<'PY'
import socket, struct, sys

port = int(sys.argv[1])
client_id = b"im-ready"
# Header: api_key 3 (Metadata), api_version 1, correlation_id, client_id; body: topics = [].
body = struct.pack(">hhih", 3, 1, 42, len(client_id)) + client_id + struct.pack(">i", 0)
try:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        def read(n):
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise EOFError("connection closed")
                buf += chunk
            return buf
        (size,) = struct.unpack(">i", read(4))
        resp = read(size)
except (OSError, EOFError):
    sys.exit(1)
correlation_id, brokers = struct.unpack_from(">ii", resp, 0)
sys.exit(0 if correlation_id == 42 and brokers >= 1 else 1)
PY
}

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  run) cmd_run "$@" ;;
  ready) cmd_ready "$@" ;;
  -h | --help | help) usage 0 ;;
  *) usage 2 ;;
esac
