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
#       It logs in and speaks TLS as the settings below say, as any client must.
# Environment (defaults in brackets):
#   IM_LOCAL_KAFKA_LIBS      the broker's jars                          [<repo>/.cache/kafka-libs]
#   IM_LOCAL_KAFKA_HEAP      JVM heap, at most (-Xmx; it starts at 64m) [384m]
#   IM_LOCAL_KAFKA_JVM_OPTS  more JVM options, appended to ours         []
#   IM_LOCAL_KAFKA_USER, IM_LOCAL_KAFKA_PASSWORD  with both, clients must log in (SASL) as this
#                            user, by SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN []
#   IM_LOCAL_KAFKA_TLS_DIR   with it, clients connect over TLS: the broker serves DIR/server.pem
#                            and DIR/server.key, and clients check it against DIR/ca.pem
#                            (deploy/local/dev-tls.sh makes them) []
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

USER_NAME="${IM_LOCAL_KAFKA_USER:-}"
PASSWORD="${IM_LOCAL_KAFKA_PASSWORD:-}"
TLS_DIR="${IM_LOCAL_KAFKA_TLS_DIR:-}"

# The clients' listener's protocol: SASL_SSL, SASL_PLAINTEXT, SSL or PLAINTEXT.
client_protocol() {
  case "${USER_NAME:+sasl}${TLS_DIR:+tls}" in
    sasltls) echo SASL_SSL ;;
    sasl) echo SASL_PLAINTEXT ;;
    tls) echo SSL ;;
    *) echo PLAINTEXT ;;
  esac
}

check_security_settings() {
  if [ -n "$USER_NAME" ] || [ -n "$PASSWORD" ]; then
    [ -n "$USER_NAME" ] && [ -n "$PASSWORD" ] ||
      die "IM_LOCAL_KAFKA_USER and IM_LOCAL_KAFKA_PASSWORD go together"
    case "$USER_NAME$PASSWORD" in
      *[[:space:]\"\'=,\\]*)
        die "IM_LOCAL_KAFKA_USER and IM_LOCAL_KAFKA_PASSWORD may not hold blanks, quotes, '=', ',' or '\\'" ;;
    esac
  fi
  if [ -n "$TLS_DIR" ]; then
    local file
    for file in ca.pem server.pem server.key; do
      [ -s "$TLS_DIR/$file" ] || die "$TLS_DIR/$file is missing (deploy/local/dev-tls.sh makes it)"
    done
  fi
}

# The security part of server.properties: the clients' listener (CLIENT), which the broker also
# uses to reach itself, with SASL users and TLS as the environment says. The controller's
# listener stays on loopback without either.
security_properties() {  # security_properties DIR
  if [ -n "$USER_NAME" ]; then
    cat <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
# PLAIN's users are listed here (the broker logs in to itself as the same user); SCRAM's live in
# the cluster's metadata (kafka.sh adds the user when it formats the data directory).
listener.name.client.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$USER_NAME" password="$PASSWORD" user_$USER_NAME="$PASSWORD";
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.client.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
  fi
  if [ -n "$TLS_DIR" ]; then
    cat <<EOF
ssl.keystore.type=PEM
ssl.keystore.location=$1/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
ssl.enabled.protocols=TLSv1.3,TLSv1.2
ssl.endpoint.identification.algorithm=https
EOF
  fi
}

write_properties() {  # write_properties FILE DIR PORT CONTROLLER_PORT
  cat >"$1" <<EOF
# Written by deploy/local/kafka.sh on every start; edits here are lost.
# One node, broker and KRaft controller at once, on loopback.
node.id=1
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:$4
listeners=CLIENT://127.0.0.1:$3,CONTROLLER://127.0.0.1:$4
advertised.listeners=CLIENT://127.0.0.1:$3
listener.security.protocol.map=CLIENT:$(client_protocol),CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=CLIENT
log.dirs=$2/data
$(security_properties "$2")

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
  check_security_settings
  mkdir -p "$dir/data" "$dir/logs"
  # Fast when the jars are there (a stamp compare); fills them from ~/.m2 or Maven Central if not.
  IM_LOCAL_KAFKA_LIBS="$LIBS" "$ROOT/deploy/kafka/fetch-jars.sh"
  # The properties and the key hold secrets: only we may read them.
  (
    umask 077
    write_properties "$dir/server.properties" "$dir" "$port" "$cport"
    [ -z "$TLS_DIR" ] || cat "$TLS_DIR/server.key" "$TLS_DIR/server.pem" >"$dir/keystore.pem"
  )
  forget_other_scram_user "$dir/data"

  local common=(-Dlog4j.configuration="file:$LOG4J_CONFIG" -Dkafka.logs.dir="$dir/logs"
    -Djava.awt.headless=true -cp "$LIBS/*")
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cluster_id
    cluster_id="$("$JAVA" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "${common[@]}" \
      kafka.tools.StorageTool random-uuid)" || die "StorageTool random-uuid failed"
    # StorageTool takes SCRAM users on its command line only: the password shows in the process
    # list for the second the format takes (a development broker's, on one machine).
    local scram=()
    [ -z "$USER_NAME" ] || scram=(
      --add-scram "SCRAM-SHA-512=[name=$USER_NAME,password=$PASSWORD]"
      --add-scram "SCRAM-SHA-256=[name=$USER_NAME,password=$PASSWORD]")
    "$JAVA" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "${common[@]}" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
      ${scram[@]+"${scram[@]}"} >&2 || die "StorageTool format failed (see $dir/logs/server.log)"
    scram_stamp >"$dir/data/im-scram-user"
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

# Whom SCRAM knows in a data directory kafka.sh formatted: the user and a hash of the password
# (the credentials live in the cluster's metadata, written only when it is formatted).
scram_stamp() {
  [ -z "$USER_NAME" ] || printf '%s %s\n' "$USER_NAME" "$(printf '%s' "$PASSWORD" | sha256sum | cut -d' ' -f1)"
}

# Data formatted for another SCRAM user (or for none) would refuse every login: it is formatted
# again. It holds only fan-out records, transient by design (messages live in MySQL).
forget_other_scram_user() {  # forget_other_scram_user DATA_DIR
  [ -f "$1/meta.properties" ] || return 0
  if [ "$(cat "$1/im-scram-user" 2>/dev/null)" != "$(scram_stamp)" ]; then
    say "$1 was formatted for another SASL user: formatting it again (fan-out records only)"
    rm -rf "$1"
    mkdir -p "$1"
  fi
}

# A Metadata request (v1, no topics), after TLS and a SASL login when the broker wants them;
# ready when the answer lists at least one live broker.
cmd_ready() {
  if [ $# -ne 1 ] || ! is_port "$1"; then usage 2; fi
  IM_READY_PORT="$1" IM_READY_USER="$USER_NAME" IM_READY_PASSWORD="$PASSWORD" \
    IM_READY_CA="${TLS_DIR:+$TLS_DIR/ca.pem}" python3 - <<'PY'
import os, socket, ssl, struct, sys

port = int(os.environ["IM_READY_PORT"])
user, password = os.environ["IM_READY_USER"], os.environ["IM_READY_PASSWORD"]
ca = os.environ["IM_READY_CA"]
client_id = b"im-ready"
correlation = 40


def request(s, api_key, api_version, body):
    """Sends one request (header v1) and returns the body of its answer."""
    global correlation
    correlation += 1
    header = struct.pack(">hhih", api_key, api_version, correlation, len(client_id)) + client_id
    s.sendall(struct.pack(">i", len(header) + len(body)) + header + body)

    def read(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        return buf

    (size,) = struct.unpack(">i", read(4))
    answer = read(size)
    if struct.unpack_from(">i", answer)[0] != correlation:
        raise EOFError("answer to another request")
    return answer[4:]


def log_in(s):
    """SASL PLAIN: SaslHandshake v1, then SaslAuthenticate v0; both must answer error code 0."""
    mechanism = b"PLAIN"
    if struct.unpack_from(">h", request(s, 17, 1, struct.pack(">h", len(mechanism)) + mechanism))[0]:
        sys.exit(1)
    token = b"\0" + user.encode() + b"\0" + password.encode()
    if struct.unpack_from(">h", request(s, 36, 0, struct.pack(">i", len(token)) + token))[0]:
        sys.exit(1)


try:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
        s = raw
        if ca:
            s = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="127.0.0.1")
        if user:
            log_in(s)
        # Metadata v1 for no topics: ready when it lists at least one live broker.
        (brokers,) = struct.unpack_from(">i", request(s, 3, 1, struct.pack(">i", 0)))
except (OSError, EOFError, ssl.SSLError):
    sys.exit(1)
sys.exit(0 if brokers >= 1 else 1)
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
