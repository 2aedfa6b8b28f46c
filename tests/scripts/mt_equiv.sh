#!/usr/bin/env bash
# Checkpoint / kill -9 / restore of a multi-threaded program at several points, several
# times, must reproduce the uninterrupted run.
#
#   mt_equiv.sh BIN_DIR APP [--points "3 12 25"] [--rounds R] [--jitter-ms J] [-- APP_ARGS...]
#
# A = stdout of the uninterrupted run (no preload), FA its files.
# 0. Under ompi-cr-run without a checkpoint the program prints A, exits the same.
# Then R rounds; in each, for every point k: run under ompi-cr-run (stdout O), wait for
# line "step k" plus a pseudo-random 0..J ms (so the checkpoint lands in different phases
# of the threads' work; the value is logged), checkpoint, kill -9, ompi-restart in the
# foreground (stdout R): R is a non-empty tail of A starting after line k, O starts with
# A minus that tail, the exit code and the files equal the uninterrupted run's, and no
# line reports a failed self-check.
source "$(dirname "${BASH_SOURCE[0]}")/mt_lib.sh"
ocr_init "$1" "$2"
shift 2

POINTS="3 12 25"
ROUNDS=1
JITTER=0
while [ $# -gt 0 ]; do
  case $1 in
    --points) POINTS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --jitter-ms) JITTER=$2; shift 2 ;;
    --) shift; break ;;
    *) fail "usage: mt_equiv.sh BIN_DIR APP [--points \"K...\"] [--rounds R] [--jitter-ms J] [-- APP_ARGS...]" ;;
  esac
done
APP_ARGS=("$@")
STEPS=$(app_steps "${APP_ARGS[@]}")
for k in $POINTS; do
  [ "$k" -ge 1 ] && [ "$k" -lt "$STEPS" ] || fail "checkpoint point $k must be in 1..$((STEPS - 1)) (pass --steps)"
done

run_reference ref "${APP_ARGS[@]}"
mt_no_errors "$T/ref.out"
mt_plain_equals_reference plain "${APP_ARGS[@]}"

RANDOM=${OCR_MT_SEED:-$$}
for ((round = 1; round <= ROUNDS; round++)); do
  for k in $POINTS; do
    delay=0
    [ "$JITTER" -le 0 ] || delay=$((RANDOM % (JITTER + 1)))
    mt_kill_restore_cycle "r${round}k$k" "$k" "$delay" "${APP_ARGS[@]}"
  done
done
log "$ROUNDS round(s) at points $POINTS: every restored run completed the uninterrupted output"
