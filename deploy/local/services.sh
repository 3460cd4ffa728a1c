#!/usr/bin/env bash
# Starts, stops and reports the backing services of a local cluster or a test run: Redis and
# MariaDB from Debian's packages, and a single-node Apache Kafka broker (deploy/local/kafka.sh, on
# Java 17 with jars from Maven Central), on private ports with private data directories, without
# systemd.
#
# Usage: deploy/local/services.sh start|stop|status [redis|mariadb|kafka ...]   (all three if none)
# Environment (defaults in brackets):
#   IM_VAR_DIR     where data, sockets, logs and pid files live   [<repo>/var/local]
#   IM_LOCAL_REDIS_PORT [16379]   IM_LOCAL_KAFKA_PORT [19092]
#   IM_LOCAL_REDIS_TLS_PORT [IM_LOCAL_REDIS_PORT + 1]: Redis's TLS port, with the development CA's
#     certificate (clients trust IM_VAR_DIR/tls/ca.pem; no client certificate asked)
#   IM_LOCAL_REDIS_USER [im]   IM_LOCAL_REDIS_PASSWORD [im-dev-redis]: Redis's user, as logic's
#     redis.username and redis.password name it (the default user takes the password too)
#   IM_LOCAL_KAFKA_CONTROLLER_PORT [19093] (the KRaft controller's listener)
#   IM_LOCAL_KAFKA_USER [im]   IM_LOCAL_KAFKA_PASSWORD [im-dev-kafka]: Kafka's SASL user, as
#     logic's kafka.username and kafka.password name it; clients log in over TLS (SASL_SSL) and
#     check the broker against IM_LOCAL_KAFKA_TLS_DIR/ca.pem [IM_VAR_DIR/tls, dev-tls.sh's]
#   IM_MYSQL_PORT [13306]   IM_MYSQL_USER [im]   IM_MYSQL_PASSWORD [im-dev]   IM_MYSQL_DATABASE [im]
#     (logic's own keys mysql.port, ...: the server is made the way logic will reach it)
# The local services' own settings are IM_LOCAL_*: an IM_<SECTION>_* variable (IM_REDIS_*,
# IM_KAFKA_*, ...) that is no config key makes im-logic refuse to start.
#   IM_LOCAL_KAFKA_HEAP, IM_LOCAL_KAFKA_LIBS, IM_LOCAL_KAFKA_JVM_OPTS: see deploy/local/kafka.sh
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VAR_DIR="${IM_VAR_DIR:-$ROOT/var/local}"
REDIS_PORT="${IM_LOCAL_REDIS_PORT:-16379}"
REDIS_TLS_PORT="${IM_LOCAL_REDIS_TLS_PORT:-$((REDIS_PORT + 1))}"
REDIS_USER="${IM_LOCAL_REDIS_USER:-im}"
REDIS_PASSWORD="${IM_LOCAL_REDIS_PASSWORD:-im-dev-redis}"
MYSQL_PORT="${IM_MYSQL_PORT:-13306}"
MYSQL_USER="${IM_MYSQL_USER:-im}"
MYSQL_PASSWORD="${IM_MYSQL_PASSWORD:-im-dev}"
MYSQL_DATABASE="${IM_MYSQL_DATABASE:-im}"
KAFKA_PORT="${IM_LOCAL_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${IM_LOCAL_KAFKA_CONTROLLER_PORT:-19093}"
# kafka.sh reads these (its `run` and its `ready` alike).
export IM_LOCAL_KAFKA_USER="${IM_LOCAL_KAFKA_USER:-im}"
export IM_LOCAL_KAFKA_PASSWORD="${IM_LOCAL_KAFKA_PASSWORD:-im-dev-kafka}"
STARTUP_TIMEOUT_SEC=60
STOP_TIMEOUT_SEC=60

REDIS_DIR="$VAR_DIR/redis"
MYSQL_DIR="$VAR_DIR/mariadb"
MYSQL_SOCKET="$MYSQL_DIR/mysqld.sock"
KAFKA_DIR="$VAR_DIR/kafka"
TLS_DIR="$VAR_DIR/tls"
export IM_LOCAL_KAFKA_TLS_DIR="${IM_LOCAL_KAFKA_TLS_DIR:-$TLS_DIR}"
KAFKA_PIDFILE="$KAFKA_DIR/kafka.pid"
KAFKA_SH="$ROOT/deploy/local/kafka.sh"

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# A process that exited but was not yet reaped (a zombie; our daemons' parent is init, which may
# take a second or two) counts as gone: it holds no ports or files any more.
proc_alive() {
  local state
  state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}
pid_alive() {
  local pid
  [ -f "$1" ] && pid="$(cat "$1" 2>/dev/null)" || return 1
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  proc_alive "$pid"
}
# The Kafka pid file names a live kafka.sh, or the java it became (not a pid reused since).
kafka_alive() {
  local cmdline
  pid_alive "$KAFKA_PIDFILE" || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$(cat "$KAFKA_PIDFILE")/cmdline" 2>/dev/null)" || return 1
  case "$cmdline" in *" kafka.Kafka "* | *"/kafka.sh run "*) return 0 ;; esac
  return 1
}

wait_until() {  # wait_until DESCRIPTION COMMAND...
  local what="$1"; shift
  local deadline=$((SECONDS + STARTUP_TIMEOUT_SEC))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not come up within ${STARTUP_TIMEOUT_SEC}s"
    sleep 0.2
  done
}

start_redis() {
  mkdir -p "$REDIS_DIR"
  if pid_alive "$REDIS_DIR/redis.pid"; then log "redis already running on $REDIS_PORT"; return; fi
  # The users go in a file only we may read, so the password shows in no process list. Every
  # client logs in: the default user has the password too (requirepass). It stays on: Redis 7.0
  # replays its append-only file as the default user, and with that user off it drops every
  # MULTI/EXEC there (NOPERM), scripts' effects among them, losing data at each restart.
  (
    umask 077
    printf 'user default on >%s ~* &* +@all\nuser %s on >%s ~* &* +@all\n' \
      "$REDIS_PASSWORD" "$REDIS_USER" "$REDIS_PASSWORD" >"$REDIS_DIR/users.conf"
  )
  # TLS on a port of its own with the development CA's certificate: logic connects there (and the
  # tests' clusters), the command-line tools to the plain port as before.
  "$ROOT/deploy/local/dev-tls.sh" "$TLS_DIR"
  redis-server "$REDIS_DIR/users.conf" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" \
    --tls-port "$REDIS_TLS_PORT" --tls-cert-file "$TLS_DIR/server.pem" \
    --tls-key-file "$TLS_DIR/server.key" --tls-ca-cert-file "$TLS_DIR/ca.pem" \
    --tls-auth-clients no \
    --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --daemonize yes \
    --save "" --appendonly yes --appendfsync everysec
  wait_until "redis on port $REDIS_PORT (its data loaded)" redis_serving
  log "redis up on 127.0.0.1:$REDIS_PORT, TLS on $REDIS_TLS_PORT ($TLS_DIR/ca.pem; data in $REDIS_DIR)"
}

# PONG, not merely an answer: while Redis loads its data it answers "-LOADING ...", and redis-cli
# exits 0 on that too.
redis_serving() { [ "$(redis_cli ping 2>/dev/null)" = PONG ]; }
redis_cli() {
  REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -p "$REDIS_PORT" --user "$REDIS_USER" "$@"
}

start_mariadb() {
  mkdir -p "$MYSQL_DIR"
  if pid_alive "$MYSQL_DIR/mysqld.pid"; then log "mariadb already running on $MYSQL_PORT"; return; fi
  if [ ! -d "$MYSQL_DIR/data/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$MYSQL_DIR/data" --user="$(id -un)" \
      --auth-root-authentication-method=socket --skip-test-db >"$MYSQL_DIR/install.log" 2>&1 ||
      die "mariadb-install-db failed; see $MYSQL_DIR/install.log"
  fi
  # TLS with the local development CA's certificate (deploy/local/dev-tls.sh; clients trust
  # $VAR_DIR/tls/ca.pem): logic and the tests connect with TLS, the command-line tools as before.
  "$ROOT/deploy/local/dev-tls.sh" "$TLS_DIR"
  # --no-defaults: nothing from /etc/mysql may move our ports, sockets or data.
  mariadbd --no-defaults --datadir="$MYSQL_DIR/data" --port="$MYSQL_PORT" \
    --ssl-ca="$TLS_DIR/ca.pem" --ssl-cert="$TLS_DIR/server.pem" --ssl-key="$TLS_DIR/server.key" \
    --bind-address=127.0.0.1 --socket="$MYSQL_SOCKET" --pid-file="$MYSQL_DIR/mysqld.pid" \
    --log-error="$MYSQL_DIR/mysqld.log" --user="$(id -un)" --skip-name-resolve \
    --innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=1 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_bin >/dev/null 2>&1 &
  wait_until "mariadb on port $MYSQL_PORT" mariadb-admin --no-defaults --socket="$MYSQL_SOCKET" \
    --user=root ping
  # Every start (all idempotent), so that a data directory made by an older version gets what
  # was added since. Databases named <database>_* are the user's too: scratch databases of tests
  # (a move from the embedded node is tested into an empty one).
  mariadb --no-defaults --socket="$MYSQL_SOCKET" --user=root <<SQL
CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$MYSQL_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'localhost' IDENTIFIED BY '$MYSQL_PASSWORD';
GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'127.0.0.1';
GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'localhost';
GRANT ALL ON \`${MYSQL_DATABASE}\\_%\`.* TO '$MYSQL_USER'@'127.0.0.1';
GRANT ALL ON \`${MYSQL_DATABASE}\\_%\`.* TO '$MYSQL_USER'@'localhost';
SQL
  log "mariadb up on 127.0.0.1:$MYSQL_PORT (TLS: $TLS_DIR/ca.pem), database $MYSQL_DATABASE, user $MYSQL_USER"
}

start_kafka() {
  mkdir -p "$KAFKA_DIR"
  if kafka_alive; then log "kafka already running on $KAFKA_PORT"; return; fi
  rm -f "$KAFKA_PIDFILE"
  if "$KAFKA_SH" ready "$KAFKA_PORT" >/dev/null 2>&1; then
    die "a Kafka broker that is not ours (no $KAFKA_PIDFILE) already serves port $KAFKA_PORT"
  fi
  # The first time this downloads the broker's jars (~45 MB); that is not start-up time.
  "$ROOT/deploy/kafka/fetch-jars.sh"
  "$ROOT/deploy/local/dev-tls.sh" "$TLS_DIR"
  (
    set -m  # a process group of its own: a Ctrl-C in this terminal later does not reach it
    nohup "$KAFKA_SH" run "$KAFKA_DIR" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" </dev/null \
      >"$KAFKA_DIR/kafka.out" 2>&1 &
    echo $! >"$KAFKA_PIDFILE"  # kafka.sh ends in exec java: this is the JVM's pid
  )
  local pid deadline=$((SECONDS + STARTUP_TIMEOUT_SEC))
  pid="$(cat "$KAFKA_PIDFILE")"
  # Ready when it answers a Metadata request listing itself: registered with its controller,
  # unfenced, able to create topics (the port alone opens earlier).
  until "$KAFKA_SH" ready "$KAFKA_PORT" >/dev/null 2>&1; do
    if ! proc_alive "$pid"; then
      rm -f "$KAFKA_PIDFILE"
      # The errors and their causes, else the end (kafka.sh's own complaints).
      { grep -E '^\[[^]]*\] (ERROR|FATAL) |^Caused by: ' "$KAFKA_DIR/kafka.out" ||
        tail -n 20 "$KAFKA_DIR/kafka.out"; } | tail -n 12 | sed 's/^/  | /' >&2
      die "kafka exited before it served; see $KAFKA_DIR/kafka.out and $KAFKA_DIR/logs/server.log"
    fi
    if [ $SECONDS -ge $deadline ]; then
      stop_pid kafka "$KAFKA_PIDFILE"
      die "kafka on port $KAFKA_PORT did not come up within ${STARTUP_TIMEOUT_SEC}s (stopped it);" \
        "see $KAFKA_DIR/logs/server.log"
    fi
    sleep 0.2
  done
  log "kafka up on 127.0.0.1:$KAFKA_PORT (SASL user $IM_LOCAL_KAFKA_USER over TLS:" \
    "$IM_LOCAL_KAFKA_TLS_DIR/ca.pem; controller 127.0.0.1:$KAFKA_CONTROLLER_PORT," \
    "data in $KAFKA_DIR)"
}

stop_pid() {  # stop_pid NAME PIDFILE
  local name="$1" pidfile="$2"
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; return; fi
  local pid; pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  local deadline=$((SECONDS + STOP_TIMEOUT_SEC))
  while proc_alive "$pid"; do
    if [ $SECONDS -ge $deadline ]; then
      log "$name did not stop within ${STOP_TIMEOUT_SEC}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
  log "$name stopped"
}

status() {  # status SERVICE...
  local rc=0 name
  for name in "$@"; do
    case "$name" in
      redis)
        if pid_alive "$REDIS_DIR/redis.pid"; then
          echo "redis    running  127.0.0.1:$REDIS_PORT (TLS $REDIS_TLS_PORT)"
        else echo "redis    stopped"; rc=3; fi
        ;;
      mariadb)
        if pid_alive "$MYSQL_DIR/mysqld.pid"; then echo "mariadb  running  127.0.0.1:$MYSQL_PORT"
        else echo "mariadb  stopped"; rc=3; fi
        ;;
      kafka)
        if ! kafka_alive; then echo "kafka    stopped"; rc=3
        elif "$KAFKA_SH" ready "$KAFKA_PORT" >/dev/null 2>&1; then
          echo "kafka    running  127.0.0.1:$KAFKA_PORT"
        else
          echo "kafka    not serving (pid $(cat "$KAFKA_PIDFILE"); see $KAFKA_DIR/logs/server.log)"
          rc=3
        fi
        ;;
    esac
  done
  return $rc
}

ALL=(redis mariadb kafka)  # start order; stop goes the other way
usage() { echo "usage: $0 start|stop|status [${ALL[*]}]..." >&2; exit 2; }
contains() { local word="$1"; shift; case " $* " in *" $word "*) return 0 ;; esac; return 1; }
command="${1:-}"
[ $# -gt 0 ] && shift
for name in "$@"; do contains "$name" "${ALL[@]}" || usage; done
services=()
for name in "${ALL[@]}"; do  # in the order of ALL, whatever the order given
  if [ $# -eq 0 ] || contains "$name" "$@"; then services+=("$name"); fi
done
case "$command" in
  start)
    for name in "${services[@]}"; do "start_$name"; done
    ;;
  stop)
    for ((i = ${#services[@]} - 1; i >= 0; i--)); do
      case "${services[$i]}" in
        kafka)
          if kafka_alive; then stop_pid kafka "$KAFKA_PIDFILE"; else rm -f "$KAFKA_PIDFILE"; fi
          ;;
        mariadb) stop_pid mariadb "$MYSQL_DIR/mysqld.pid" ;;
        redis) stop_pid redis "$REDIS_DIR/redis.pid" ;;
      esac
    done
    ;;
  status) status "${services[@]}" ;;
  *) usage ;;
esac
