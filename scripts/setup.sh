#!/usr/bin/env bash
# Installs everything EditEval needs on a Debian machine with Node 20, then builds it:
#   1. system libraries: Debian's libtorch-dev and OpenBLAS (skipped when LIBTORCH points elsewhere);
#   2. npm ci (its install script compiles the libtorch addon);
#   3. the TypeScript build.
# Uses sudo only when not root. Re-running it is cheap: installed packages are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'editeval setup: %s\n' "$*"; }

pkgs=()
if [ -z "${LIBTORCH:-}" ]; then
  for p in libtorch-dev libopenblas0-pthread g++ make; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || pkgs+=("$p")
  done
fi
if [ "${#pkgs[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "apt-get is not available, so ${pkgs[*]} cannot be installed here."
    say "Install libtorch yourself and point the build at it: LIBTORCH=/path/to/libtorch (a libtorch"
    say "distribution with include/ and lib/) or LIBTORCH=python (the libtorch inside Python's torch package)."
    exit 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      say "need root to install ${pkgs[*]}; run as root or install sudo"
      exit 1
    fi
    SUDO=sudo
  fi
  say "installing ${pkgs[*]} (apt-get)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
fi

say "npm ci (builds the libtorch addon)"
npm ci --no-audit --no-fund
say "TypeScript build"
npm run build --silent
say "ready"
