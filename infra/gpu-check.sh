#!/usr/bin/env bash
# The CUDA backend's checks and benchmarks, on a machine with an NVIDIA GPU and no Rust
# toolchain, from binaries built elsewhere:
#
#   infra/gpu-check.sh build     # here: release binaries, stripped, into .gpu/
#   infra/gpu-check.sh run       # there, in the repository root, with .gpu/ beside it
#   infra/gpu-check.sh run cuda-unit bench-prover   # only the steps named
#
# `run` finds NVRTC (CUDA's lib64 or a pip wheel's folder), runs the CUDA tests (backends agree
# with the CPU backend bit for bit, proofs on the GPU verify), then `prover bench merkle` (with
# the tree kernels' bandwidth), `bench commit` and `bench prover`, each log written to $OUT
# (default /tmp/gpu-check).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.gpu

build() {
    set -e
    cargo build --release -p via-workers --bin prover
    local tests
    tests=$(cargo test --release -p via-circuit-prover -p via-circuits --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in ("via_circuit_prover", "prove", "basic_circuits"):
        print(m["target"]["name"], m["executable"])')
    rm -rf "$BIN" && mkdir -p "$BIN"
    cp target/release/prover "$BIN/prover"
    while read -r name path; do cp "$path" "$BIN/$name"; done <<<"$tests"
    strip "$BIN"/*
    ls -la "$BIN"
}

# Runs every step, or only those named.
wanted() {
    [ ${#STEPS[@]} -eq 0 ] && return 0
    local s
    for s in "${STEPS[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}

step() {
    local name=$1
    shift
    wanted "$name" || return 0
    echo "=== $name: $*"
    local started=$SECONDS
    "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc after $((SECONDS - started)) s"
    echo "$name $rc $((SECONDS - started))" >>"$OUT/summary.txt"
}

run() {
    OUT=${OUT:-/tmp/gpu-check}
    mkdir -p "$OUT"
    : >"$OUT/summary.txt"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv
    nproc
    local nvrtc
    nvrtc=$(find /usr/local /opt /usr/lib -name 'libnvrtc.so.13*' 2>/dev/null | head -1)
    [ -n "$nvrtc" ] && export LD_LIBRARY_PATH="$(dirname "$nvrtc")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "NVRTC: ${nvrtc:-not found}"
    # The kernels compiled for the CPU are checked wherever the tests run (and need a C++
    # compiler, which a GPU machine may lack).
    step cuda-unit "$BIN/via_circuit_prover" cuda --skip compiled_for_the_host --test-threads 1 --nocapture
    step prove "$BIN/prove" --test-threads 1 --nocapture
    step basic-circuits "$BIN/basic_circuits" our_prover_and_plonky2s --nocapture
    step merkle-19 "$BIN/prover" bench merkle --log-leaves 19 --runs 3
    step commit-14 "$BIN/prover" bench commit --degree-bits 14 --runs 3
    step commit-16 "$BIN/prover" bench commit --degree-bits 16 --runs 3
    # With each of our proofs' time per step, to see what is left on the CPU. Fastest of two
    # runs: a circuit's first proof on the GPU also uploads its constants and sigmas.
    RUST_LOG=info,via_circuit_prover=debug step bench-prover "$BIN/prover" bench prover --shape production --runs 2
    cat "$OUT/summary.txt"
}

command=${1:-}
shift || true
STEPS=("$@")
case "$command" in
build) build ;;
run) run ;;
*) echo "usage: $0 build | run [step...]" >&2; exit 2 ;;
esac
