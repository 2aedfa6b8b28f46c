#!/usr/bin/env bash
# Checkpoint / kill -9 / restore at several points must reproduce the uninterrupted run.
#
#   equivalence.sh BIN_DIR APP [--points "3 17 33"] [-- APP_ARGS...]
#
# A  = stdout of the uninterrupted run (no preload), FA = its files (outfile, .stdio).
# 0. The same run under ompi-cr-run without any checkpoint equals A, FA, exit code.
# For each point k:
#    run under ompi-cr-run (stdout O), wait for line "step k", checkpoint, kill -9 at once,
#    ompi-restart the image in the foreground (stdout R), then require
#    - R is not empty and is exactly a tail of A, starting after line k and at a line
#      boundary; with P = A minus its last |R| bytes, O starts with P (O may hold extra
#      lines printed between the checkpoint and the kill, which R prints again);
#    - ompi-restart's exit code equals the uninterrupted run's;
#    - the program's files after the restored run equal FA byte for byte.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ocr_init "$1" "$2"
shift 2

POINTS="3 17 33"
while [ $# -gt 0 ]; do
  case $1 in
    --points) POINTS=$2; shift 2 ;;
    --) shift; break ;;
    *) fail "usage: equivalence.sh BIN_DIR APP [--points \"K...\"] [-- APP_ARGS...]" ;;
  esac
done
APP_ARGS=("$@")
[ ${#APP_ARGS[@]} -gt 0 ] || APP_ARGS=(--steps 40 --heap-mb 256 --step-ms 50 --exit-code 5)
STEPS=$(app_steps "${APP_ARGS[@]}")
for k in $POINTS; do
  [ "$k" -ge 1 ] && [ "$k" -lt "$STEPS" ] || fail "checkpoint point $k must be in 1..$((STEPS - 1))"
done

run_reference ref "${APP_ARGS[@]}"

# 0. preloading the runtime changes nothing
touch "$T/gate-open"
start_cr plain "$T/plain.file" "$T/gate-open" "${APP_ARGS[@]}"
wait_exit "$PID"
[ "$RC" -eq "$REF_RC" ] || fail "under ompi-cr-run the program exited with $RC, uninterrupted with $REF_RC"
cmp -s "$T/ref.out" "$T/plain.out" || { show_diff "$T/ref.out" "$T/plain.out"; fail "output under ompi-cr-run (no checkpoint) differs from the plain run"; }
check_files "$T/plain.file" "$T/ref.file"
log "under ompi-cr-run without checkpoint: identical output, files and exit code"

for k in $POINTS; do
  log "--- checkpoint after step $k"
  start_cr "run$k" "$T/run$k.file" "$T/gate$k" "${APP_ARGS[@]}"
  pid=$PID
  wait_step "$T/run$k.out" "$k" "$pid"
  checkpoint "ckpt$k" "$pid"
  img=$IMAGE
  kill9 "$pid"
  info_ok "$img"
  touch "$T/gate$k"
  restore_fg "restore$k" "$img"
  check_restored_output "restore$k" "$k" ref
  check_prefix "$T/ref.out" "$TAIL_START" "$T/run$k.out"
  check_files "$T/run$k.file" "$T/ref.file"
  log "step $k: killed run + restored run == uninterrupted run; files identical; exit code $RC"
  rm -rf -- "$img"
done
