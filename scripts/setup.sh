#!/usr/bin/env bash
# Installs every Debian package ompi-cr needs to build, test and benchmark.
# Idempotent and quiet when everything is already there. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git clang-format
  libcli11-dev libxxhash-dev libzstd-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  openmpi-bin libopenmpi-dev libpmix-dev
  libhdf5-dev hdf5-tools libhwloc-dev
  gfortran procps util-linux file binutils
  python3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: need root to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
