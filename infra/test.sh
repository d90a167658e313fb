#!/usr/bin/env bash
# Runs every test on a fresh machine: installs the tools, starts the local stack (Temporal,
# PostgreSQL, S3), runs the workspace's tests against it, and stops what it started.
#
#   infra/test.sh [extra cargo test arguments]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/infra/install.sh"
started_here=0
if ! running "$STACK/temporal.pid"; then started_here=1; fi
"$ROOT/infra/stack.sh" up
if [ "$started_here" = 1 ]; then trap '"$ROOT/infra/stack.sh" down' EXIT; fi
source "$STACK/env"
export LD_LIBRARY_PATH="$NVRTC_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

cargo test --workspace --locked "$@"
