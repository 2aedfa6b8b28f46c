#!/usr/bin/env bash
# The test command: set up, build (warnings are errors), run every test.
#
#   ./scripts/test.sh                 all tests (unit and end-to-end)
#   ./scripts/test.sh -L e2e          only the end-to-end tests (any ctest arguments)
#   ./scripts/test.sh -LE e2e         only the unit tests
#
# Works from any directory; builds in <repo>/build (or $OMPI_CR_BUILD_DIR); exits with
# ctest's status.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${OMPI_CR_BUILD_DIR:-$root/build}

# Open MPI refuses to run as root without these (CI runs as root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

OMPI_CR_BUILD_DIR=$build bash "$root/scripts/build.sh"
rc=0
ctest --test-dir "$build" --output-on-failure "$@" || rc=$?
exit $rc
