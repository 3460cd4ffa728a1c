#!/usr/bin/env bash
# Moves the embedded node's data into the cluster's MySQL (docs/embedded.md, "What the move is"):
# copies every table of DATA_DIR/im.db (messages, conversations, user_conversations, im_groups,
# group_members: the same tables, column for column) into the MySQL database, in one transaction,
# then checks that each table holds as many rows as the source.
#
# Usage: scripts/embedded-to-cluster.sh DATA_DIR
#   DATA_DIR  im-server's data directory (server.data_dir / --data); im-server must be stopped
# The target is named as im-logic's config names it, by environment (defaults in brackets):
#   IM_MYSQL_HOST [127.0.0.1]  IM_MYSQL_PORT [13306]  IM_MYSQL_USER [im]
#   IM_MYSQL_PASSWORD [im-dev]  IM_MYSQL_DATABASE [im]
# The database must have the schema (im-logic --migrate-only) and empty tables: nothing is merged.
# Needs the sqlite3 and mariadb (or mysql) command-line clients (scripts/install-deps.sh).
set -euo pipefail

say() { printf 'embedded-to-cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ $# -eq 1 ] || die "usage: $0 DATA_DIR"
DATA_DIR="$1"
DB="$DATA_DIR/im.db"
[ -f "$DB" ] || die "no database at $DB (is $DATA_DIR im-server's data directory?)"
command -v sqlite3 >/dev/null || die "sqlite3 is not installed (apt-get install sqlite3)"
MYSQL_CLIENT="$(command -v mariadb || command -v mysql || true)"
[ -n "$MYSQL_CLIENT" ] || die "neither mariadb nor mysql client is installed"

# im-server holds DATA_DIR/LOCK while it runs: its last writes would be missed.
exec 9>>"$DATA_DIR/LOCK"
flock -n 9 || die "im-server is running on $DATA_DIR: stop it first (it commits what it holds)"

export MYSQL_PWD="${IM_MYSQL_PASSWORD:-im-dev}"
DATABASE="${IM_MYSQL_DATABASE:-im}"
mysql_run() {  # mysql_run [OPTIONS...]: SQL on stdin, tab-separated rows out
  "$MYSQL_CLIENT" --no-defaults --protocol=TCP --host="${IM_MYSQL_HOST:-127.0.0.1}" \
    --port="${IM_MYSQL_PORT:-13306}" --user="${IM_MYSQL_USER:-im}" --batch --skip-column-names \
    "$@" "$DATABASE"
}

# Table, then its columns; a column that is a byte string travels as hex (any byte survives the
# text file) and NULL as \N.
TABLES=(messages conversations user_conversations im_groups group_members)
declare -A COLUMNS=(
  [messages]="conv_id:b seq msg_id sender:b client_msg_id:b type body:b created_ms"
  [conversations]="conv_id:b max_seq updated_ms"
  [user_conversations]="uid:b conv_id:b delivered_seq read_seq joined_ms"
  [im_groups]="group_id:b name:b owner:b created_ms member_count"
  [group_members]="group_id:b uid:b role joined_seq joined_ms"
)

for table in "${TABLES[@]}"; do
  count="$(echo "SELECT COUNT(*) FROM $table" | mysql_run)" ||
    die "cannot read $table in $DATABASE: apply the schema first (im-logic --migrate-only)"
  [ "$count" = 0 ] || die "$DATABASE.$table already holds $count rows: the move needs empty tables"
done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
load_sql="SET FOREIGN_KEY_CHECKS = 0; START TRANSACTION;"
for table in "${TABLES[@]}"; do
  selects=() targets=() sets=()
  for column in ${COLUMNS[$table]}; do
    name="${column%%:*}"
    if [ "$column" != "$name" ]; then
      selects+=("CASE WHEN $name IS NULL THEN '\\N' ELSE hex($name) END")
      targets+=("@$name")
      sets+=("$name = UNHEX(@$name)")
    else
      selects+=("$name")
      targets+=("$name")
    fi
  done
  (IFS=,; sqlite3 -readonly -batch -noheader -separator $'\t' "$DB" \
    "SELECT ${selects[*]} FROM $table") >"$WORK/$table.tsv" ||
    die "cannot read $table from $DB"
  load_sql+=" LOAD DATA LOCAL INFILE '$WORK/$table.tsv' INTO TABLE $table"
  load_sql+=" FIELDS TERMINATED BY '\\t' ($(IFS=,; echo "${targets[*]}"))"
  if [ ${#sets[@]} -gt 0 ]; then load_sql+=" SET $(IFS=,; echo "${sets[*]}")"; fi
  load_sql+=";"
done
load_sql+=" COMMIT;"
say "copying ${TABLES[*]} from $DB into $DATABASE"
echo "$load_sql" | mysql_run --local-infile=1 || die "the copy failed; nothing was committed"

for table in "${TABLES[@]}"; do
  source_rows="$(sqlite3 -readonly -batch "$DB" "SELECT COUNT(*) FROM $table")"
  target_rows="$(echo "SELECT COUNT(*) FROM $table" | mysql_run)"
  [ "$source_rows" = "$target_rows" ] ||
    die "$table: $source_rows rows in $DB, $target_rows in $DATABASE"
  say "$table: $target_rows rows"
done
say "done: start im-logic on $DATABASE (same logic.token_secret), then the gateways"
