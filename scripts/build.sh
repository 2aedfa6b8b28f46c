#!/usr/bin/env bash
# Installs the dependencies (scripts/setup.sh, idempotent), configures and builds ompi-cr.
# Used by scripts/test.sh and scripts/demo.sh; works from any directory.
#
#   scripts/build.sh [extra cmake configure args...]
#
# Build directory: $OMPI_CR_BUILD_DIR, default <repo>/build. Warnings are errors.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${OMPI_CR_BUILD_DIR:-$root/build}

bash "$root/scripts/setup.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOMPI_CR_WERROR=ON "$@"
cmake --build "$build" -j"$(nproc)"
