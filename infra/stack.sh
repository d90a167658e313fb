#!/usr/bin/env bash
# Starts, stops or reports the local stack: the Temporal dev server (with its UI), PostgreSQL on a
# project-local cluster, and the S3 server. `up` is idempotent (a running service is left as it
# is) and writes $STACK/env with the addresses the tests and the prover read. `down` stops only
# what `up` started, by PID.
#
#   infra/stack.sh up | down | status
set -euo pipefail
source "$(dirname "$0")/lib.sh"

temporal_up() {
  local pidfile="$STACK/temporal.pid" log="$STACK/temporal.log"
  if running "$pidfile"; then say "Temporal dev server already running (pid $(cat "$pidfile"))"; return; fi
  [ -x "$TEMPORAL" ] || die "Temporal CLI missing: run infra/install.sh"
  # setsid: a new session, so the server outlives this script and is stopped by PID in `down`.
  setsid "$TEMPORAL" server start-dev \
    --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
    --http-port "$TEMPORAL_HTTP_PORT" --metrics-port "$TEMPORAL_METRICS_PORT" \
    --db-filename "$STACK/temporal.db" --log-level warn \
    --search-attribute BatchNumber=Int \
    --search-attribute ProtocolVersion=Keyword \
    --search-attribute ProvingStage=Keyword \
    >"$log" 2>&1 < /dev/null &
  echo $! >"$pidfile"
  wait_for_port "$TEMPORAL_PORT" "Temporal dev server" "$log"
  say "Temporal dev server on 127.0.0.1:$TEMPORAL_PORT, UI http://127.0.0.1:$TEMPORAL_UI_PORT (pid $(cat "$pidfile"))"
}

postgres_up() {
  local data log="$STACK/postgres.log"
  data="$(pg_data_dir)"
  if [ -f "$data/postmaster.pid" ] && as_postgres "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "PostgreSQL already running on port $POSTGRES_PORT ($data)"; return
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres: "$data"
    as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
    say "initialised a PostgreSQL cluster in $data"
  fi
  touch "$log" && { [ "$(id -u)" != 0 ] || chown postgres: "$log"; }
  as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w \
    -o "-p $POSTGRES_PORT -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null
  say "PostgreSQL on 127.0.0.1:$POSTGRES_PORT ($data)"
}

s3_up() {
  local pidfile="$STACK/s3.pid" log="$STACK/s3.log"
  if running "$pidfile"; then say "S3 server already running (pid $(cat "$pidfile"))"; return; fi
  command -v s3s-fs >/dev/null || die "s3s-fs missing: run infra/install.sh"
  # s3s-fs cannot create buckets: a bucket is a directory under its root.
  mkdir -p "$STACK/s3/$S3_BUCKET"
  setsid s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" \
    "$STACK/s3" >"$log" 2>&1 < /dev/null &
  echo $! >"$pidfile"
  wait_for_port "$S3_PORT" "S3 server" "$log"
  say "S3 server on http://127.0.0.1:$S3_PORT, bucket $S3_BUCKET (pid $(cat "$pidfile"))"
}

write_env() {
  cat >"$STACK/env" <<ENV
export VIA_TEST_TEMPORAL_ADDRESS=http://127.0.0.1:$TEMPORAL_PORT
export VIA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$POSTGRES_PORT/postgres
export VIA_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export VIA_TEST_S3_BUCKET=$S3_BUCKET
export VIA_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY
export VIA_TEST_S3_SECRET_KEY=$S3_SECRET_KEY
ENV
  say "addresses written to $STACK/env"
}

stop_pid() {
  local pidfile="$1" what="$2"
  if running "$pidfile"; then
    local pid; pid="$(cat "$pidfile")"
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    say "stopped $what (pid $pid)"
  fi
  rm -f "$pidfile"
}

down() {
  stop_pid "$STACK/temporal.pid" "Temporal dev server"
  stop_pid "$STACK/s3.pid" "S3 server"
  local data; data="$(pg_data_dir)"
  if [ -f "$data/postmaster.pid" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null && say "stopped PostgreSQL"
  fi
}

status() {
  running "$STACK/temporal.pid" && say "Temporal: running (pid $(cat "$STACK/temporal.pid"))" || say "Temporal: stopped"
  running "$STACK/s3.pid" && say "S3: running (pid $(cat "$STACK/s3.pid"))" || say "S3: stopped"
  as_postgres "$PG_BIN/pg_ctl" -D "$(pg_data_dir)" status >/dev/null 2>&1 && say "PostgreSQL: running" || say "PostgreSQL: stopped"
}

mkdir -p "$STACK"
case "${1:-}" in
  up) temporal_up; postgres_up; s3_up; write_env ;;
  down) down ;;
  status) status ;;
  *) die "usage: infra/stack.sh up|down|status" ;;
esac
