#!/usr/bin/env bash
# Many checkpoints of one running multi-threaded process, without killing it; then
# restores of some of the images.
#
#   mt_ckpt_storm.sh BIN_DIR APP [--count N] [--from K] [--jitter-ms J] [--restore "1 N"] [-- APP_ARGS...]
#
# The program runs under ompi-cr-run; from step K on it is checkpointed N times in a
# row, each time as soon as the previous checkpoint returned plus 0..J ms (so the
# checkpoints land in every phase of the threads' life: starting, running, exiting,
# ended and not yet joined). Requirements:
# - every checkpoint succeeds (ompi-checkpoint exit 0, "Image: <path>");
# - the process, checkpointed N times, finishes with exactly the uninterrupted output,
#   files and exit code, and no line reports a failed self-check;
# - each image listed in --restore (1-based indices, default the first and the last)
#   restores to a run that completes the uninterrupted output (tail of A after the step
#   printed before that checkpoint, same exit code, files equal).
source "$(dirname "${BASH_SOURCE[0]}")/mt_lib.sh"
ocr_init "$1" "$2"
shift 2

COUNT=10
FROM=2
JITTER=50
RESTORE=""
while [ $# -gt 0 ]; do
  case $1 in
    --count) COUNT=$2; shift 2 ;;
    --from) FROM=$2; shift 2 ;;
    --jitter-ms) JITTER=$2; shift 2 ;;
    --restore) RESTORE=$2; shift 2 ;;
    --) shift; break ;;
    *) fail "usage: mt_ckpt_storm.sh BIN_DIR APP [--count N] [--from K] [--jitter-ms J] [--restore \"I...\"] [-- APP_ARGS...]" ;;
  esac
done
APP_ARGS=("$@")
[ -n "$RESTORE" ] || RESTORE="1 $COUNT"
STEPS=$(app_steps "${APP_ARGS[@]}")
[ "$FROM" -lt "$STEPS" ] || fail "--from $FROM must be below the number of steps ($STEPS)"

run_reference ref "${APP_ARGS[@]}"
mt_no_errors "$T/ref.out"

RANDOM=${OCR_MT_SEED:-$$}
start_cr orig "$T/orig.file" "$T/gate" "${APP_ARGS[@]}"
pid=$PID
wait_step "$T/orig.out" "$FROM" "$pid"
declare -a IMAGES AFTER
for ((i = 1; i <= COUNT; i++)); do
  # the last step line printed before this checkpoint was requested
  last=$(grep -c '^step ' "$T/orig.out" || true)
  [ "$last" -lt "$STEPS" ] || fail "the program reached its last step after $((i - 1)) checkpoints (make it longer or --count smaller)"
  mt_pause_ms $((RANDOM % (JITTER + 1)))
  checkpoint "ckpt$i" "$pid"
  IMAGES[i]=$IMAGE
  AFTER[i]=$last
  proc_alive "$pid" || fail "the process did not survive checkpoint $i (without --term): $(head -c 1000 "$T/orig.err")"
done
log "$COUNT checkpoints of pid $pid succeeded"
touch "$T/gate"
wait_exit "$pid"
[ "$RC" -eq "$REF_RC" ] || fail "the process checkpointed $COUNT times exited with $RC, the uninterrupted run with $REF_RC: $(head -c 1000 "$T/orig.err")"
cmp -s "$T/ref.out" "$T/orig.out" || { show_diff "$T/ref.out" "$T/orig.out"; fail "the output of the process checkpointed $COUNT times differs from the uninterrupted run"; }
check_files "$T/orig.file" "$T/ref.file"
log "process checkpointed $COUNT times and continued: identical output, files and exit code"

for i in $RESTORE; do
  [ -n "${IMAGES[i]:-}" ] || fail "--restore: there is no image $i"
  restore_fg "restore$i" "${IMAGES[i]}"
  check_restored_output "restore$i" "${AFTER[i]}" ref
  mt_no_errors "$T/restore$i.out"
  check_files "$T/orig.file" "$T/ref.file"
done
log "images $RESTORE restored to completion"
