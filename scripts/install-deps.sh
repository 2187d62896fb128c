#!/bin/sh
# install-deps.sh — install the Debian packages pika builds and tests with.
# Idempotent: installs only what is missing. Called by `make` when pkg-config
# cannot find a library, so a fresh Debian 12 machine needs no manual step.
set -eu

PKGS="build-essential make pkg-config
libopenblas-dev liblapacke-dev
libpcre2-dev libcjson-dev libcurl4-openssl-dev libmicrohttpd-dev
liblinear-dev libsqlite3-dev zlib1g-dev libutf8proc-dev
bubblewrap gnuplot-nox python3 python3-numpy python3-sklearn"

# `install-deps.sh --fuzz` (used by `make fuzz`) adds clang and libFuzzer (compiler-rt).
FUZZ_PKGS="clang libclang-rt-dev"
if [ "${1:-}" = "--fuzz" ]; then PKGS="$PKGS $FUZZ_PKGS"; fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-deps: need root (or sudo) to install:$missing" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2 || true
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
