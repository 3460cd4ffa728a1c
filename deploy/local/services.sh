#!/usr/bin/env bash
# Starts, stops and reports the backing services of a local cluster or a test run: Redis and
# MariaDB from Debian's packages, on private ports with private data directories, without
# systemd. Kafka joins them with the group-chat issue.
#
# Usage: deploy/local/services.sh start|stop|status
# Environment (defaults in brackets):
#   IM_VAR_DIR     where data, sockets, logs and pid files live   [<repo>/var/local]
#   IM_REDIS_PORT  [16379]     IM_MYSQL_PORT  [13306]
#   IM_MYSQL_USER  [im]        IM_MYSQL_PASSWORD [im-dev]      IM_MYSQL_DATABASE [im]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VAR_DIR="${IM_VAR_DIR:-$ROOT/var/local}"
REDIS_PORT="${IM_REDIS_PORT:-16379}"
MYSQL_PORT="${IM_MYSQL_PORT:-13306}"
MYSQL_USER="${IM_MYSQL_USER:-im}"
MYSQL_PASSWORD="${IM_MYSQL_PASSWORD:-im-dev}"
MYSQL_DATABASE="${IM_MYSQL_DATABASE:-im}"
STARTUP_TIMEOUT_SEC=60

REDIS_DIR="$VAR_DIR/redis"
MYSQL_DIR="$VAR_DIR/mariadb"
MYSQL_SOCKET="$MYSQL_DIR/mysqld.sock"

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

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
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" \
    --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --daemonize yes \
    --save "" --appendonly yes --appendfsync everysec
  wait_until "redis on port $REDIS_PORT" redis-cli -p "$REDIS_PORT" ping
  log "redis up on 127.0.0.1:$REDIS_PORT (data in $REDIS_DIR)"
}

start_mariadb() {
  mkdir -p "$MYSQL_DIR"
  if pid_alive "$MYSQL_DIR/mysqld.pid"; then log "mariadb already running on $MYSQL_PORT"; return; fi
  local fresh=0
  if [ ! -d "$MYSQL_DIR/data/mysql" ]; then
    fresh=1
    mariadb-install-db --no-defaults --datadir="$MYSQL_DIR/data" --user="$(id -un)" \
      --auth-root-authentication-method=socket --skip-test-db >"$MYSQL_DIR/install.log" 2>&1 ||
      die "mariadb-install-db failed; see $MYSQL_DIR/install.log"
  fi
  # --no-defaults: nothing from /etc/mysql may move our ports, sockets or data.
  mariadbd --no-defaults --datadir="$MYSQL_DIR/data" --port="$MYSQL_PORT" \
    --bind-address=127.0.0.1 --socket="$MYSQL_SOCKET" --pid-file="$MYSQL_DIR/mysqld.pid" \
    --log-error="$MYSQL_DIR/mysqld.log" --user="$(id -un)" --skip-name-resolve \
    --innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=1 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_bin >/dev/null 2>&1 &
  wait_until "mariadb on port $MYSQL_PORT" mariadb-admin --no-defaults --socket="$MYSQL_SOCKET" \
    --user=root ping
  if [ "$fresh" = 1 ]; then
    mariadb --no-defaults --socket="$MYSQL_SOCKET" --user=root <<SQL
CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$MYSQL_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'localhost' IDENTIFIED BY '$MYSQL_PASSWORD';
GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'127.0.0.1';
GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'localhost';
SQL
  fi
  log "mariadb up on 127.0.0.1:$MYSQL_PORT, database $MYSQL_DATABASE, user $MYSQL_USER"
}

stop_pid() {  # stop_pid NAME PIDFILE
  local name="$1" pidfile="$2"
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; return; fi
  local pid; pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  local deadline=$((SECONDS + STARTUP_TIMEOUT_SEC))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then log "$name did not stop; killing"; kill -KILL "$pid"; fi
    sleep 0.2
  done
  rm -f "$pidfile"
  log "$name stopped"
}

status() {
  local rc=0
  if pid_alive "$REDIS_DIR/redis.pid"; then echo "redis    running  127.0.0.1:$REDIS_PORT"
  else echo "redis    stopped"; rc=3; fi
  if pid_alive "$MYSQL_DIR/mysqld.pid"; then echo "mariadb  running  127.0.0.1:$MYSQL_PORT"
  else echo "mariadb  stopped"; rc=3; fi
  return $rc
}

case "${1:-}" in
  start) start_redis; start_mariadb ;;
  stop) stop_pid mariadb "$MYSQL_DIR/mysqld.pid"; stop_pid redis "$REDIS_DIR/redis.pid" ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
