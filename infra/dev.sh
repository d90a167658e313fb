#!/usr/bin/env bash
# The main job on a fresh machine: installs what the build needs, then runs `prover dev` on the
# embedded defaults: the whole pipeline on a local devnet, proving batches end to end (see the
# README for what it shows).
#
#   infra/dev.sh [prover dev arguments]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/infra/install.sh"
exec cargo run --release --locked --bin prover -- dev "$@"
