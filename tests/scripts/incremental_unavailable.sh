#!/usr/bin/env bash
# A dirty-tracking backend that cannot work gives a clear error, never a wrong image.
#
#   incremental_unavailable.sh BIN_DIR APP BACKEND
#
# BACKEND:
#   softdirty  forced with OMPI_CR_DIRTY_TRACKING=softdirty on a kernel without
#              CONFIG_MEM_SOFT_DIRTY (this machine, kernel 6.18): the runtime prints
#              exactly one line on stderr at start naming the backend and why; (the test
#              SKIPs, exit 77, on a kernel that does have soft-dirty)
#   none       OMPI_CR_DIRTY_TRACKING=none: tracking disabled on purpose; nothing on stderr
#   bogus      OMPI_CR_DIRTY_TRACKING=bogus-name: one line on stderr naming the value
# Then, for each: ompi-checkpoint --incremental before any image and again after a full
# image is refused (exit code non-zero and < 128, one line on stderr giving the reason,
# naming the backend for softdirty/bogus), no image file is left behind, the process
# keeps running; full images work; the run ends exactly like the uninterrupted one
# (output, files, exit code), and the full image restores to the right tail.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/inc_lib.sh"
BACKEND=${3:?"usage: incremental_unavailable.sh BIN_DIR APP BACKEND"}
OCR_TEST_NAME="incremental_unavailable/$BACKEND"
ocr_init "$1" "$2"
APP_ARGS=(--steps 16 --heap-mb 16 --step-ms 20 --exit-code 11)

case $BACKEND in
  softdirty)
    export OMPI_CR_DIRTY_TRACKING=softdirty
    START_RE='soft-?dirty'
    START_NAMES=softdirty
    REFUSE_RE='soft-?dirty'
    ;;
  none)
    export OMPI_CR_DIRTY_TRACKING=none
    START_RE=''
    REFUSE_RE='disabled|no dirty tracking|not armed|tracking'
    ;;
  bogus)
    export OMPI_CR_DIRTY_TRACKING=bogus-name
    START_RE='unknown|invalid|not a|unsupported'
    START_NAMES=bogus-name
    REFUSE_RE='unknown|invalid|bogus-name|tracking'
    ;;
  *) fail "unknown backend case $BACKEND" ;;
esac

run_reference ref "${APP_ARGS[@]}"
start_cr run "$T/run.file" "$T/gate" "${APP_ARGS[@]}"
pid=$PID
wait_step "$T/run.out" 2 "$pid"
if [ -n "$START_RE" ]; then
  if [ "$BACKEND" = softdirty ] && [ ! -s "$T/run.err" ]; then
    skip "soft-dirty tracking works on this kernel: nothing to refuse"
  fi
  expect_clean_failure "ompi-cr-run with OMPI_CR_DIRTY_TRACKING=$OMPI_CR_DIRTY_TRACKING (start-up message)" \
    run 1 "$START_RE" "$START_NAMES"
else
  [ ! -s "$T/run.err" ] || fail "OMPI_CR_DIRTY_TRACKING=none printed on stderr: $(cat "$T/run.err")"
fi
cp "$T/run.err" "$T/run.err.start"

snapdir=$T/snap/ompi_cr_$pid.ckpt
ckpt_fails inc-first "$pid" "$T/snap" --incremental
expect_clean_failure "ompi-checkpoint --incremental (no image yet)" inc-first "$RC" "$REFUSE_RE" ""
wait_step "$T/run.out" 4 "$pid"
ckpt full "$pid" "$T/snap" --full
full=$IMAGE
wait_step "$T/run.out" 6 "$pid"
ckpt_fails inc-after-full "$pid" "$T/snap" --incremental
expect_clean_failure "ompi-checkpoint --incremental (after a full image)" inc-after-full "$RC" "$REFUSE_RE" ""
[ "$(ls "$snapdir")" = "${full##*/}" ] || fail "refused checkpoints left files: $(ls "$snapdir")"
proc_alive "$pid" || fail "the process did not survive the refused checkpoints"
cmp -s "$T/run.err" "$T/run.err.start" || fail "the process printed on stderr after start-up: $(cat "$T/run.err")"
info "$full"
[ "$INFO_CHAIN" = 1 ] || fail "the full image is not a full image"

touch "$T/gate"
wait_exit "$pid"
[ "$RC" -eq "$REF_RC" ] || fail "the process exited with $RC, the uninterrupted run with $REF_RC"
cmp -s "$T/ref.out" "$T/run.out" || { show_diff "$T/ref.out" "$T/run.out"; fail "the output differs from the uninterrupted run"; }
check_files "$T/run.file" "$T/ref.file"
restore_fg restore "$full"
restored_ok restore 4
check_files "$T/run.file" "$T/ref.file"
log "backend $BACKEND: incremental images refused cleanly, full images and the run unaffected"
