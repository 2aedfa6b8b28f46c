#!/usr/bin/env bash
# Restore an image while the checkpointed process still runs.
#
#   mt_restore_while_running.sh BIN_DIR APP K [APP_ARGS...]
#
# The program runs under ompi-cr-run (stdout O); after line "step K" it is checkpointed
# and left running, held before its last step by the gate. While it is alive (so its
# PID and its threads' ids are taken), the image is restored in the foreground (stdout R).
# Requirements: R is a non-empty tail of the uninterrupted output A starting after line
# K, with A's exit code, and no line reports a failed self-check; then the gate opens
# and the original finishes with exactly A and A's exit code.
#
# This is the case where a restore cannot give the threads their old kernel ids back:
# whatever a thread held at the checkpoint must keep working with new ids.
source "$(dirname "${BASH_SOURCE[0]}")/mt_lib.sh"
ocr_init "$1" "$2"
K=${3:?usage: mt_restore_while_running.sh BIN_DIR APP K [APP_ARGS...]}
shift 3
APP_ARGS=("$@")
[ "$K" -lt "$(app_steps "${APP_ARGS[@]}")" ] || fail "K must be below the number of steps"

run_reference ref "${APP_ARGS[@]}"
mt_no_errors "$T/ref.out"

start_cr orig "$T/orig.file" "$T/gate" "${APP_ARGS[@]}"
pid=$PID
wait_step "$T/orig.out" "$K" "$pid"
checkpoint ckpt "$pid"
img=$IMAGE
proc_alive "$pid" || fail "the process did not survive the checkpoint"

# Both copies wait for the same gate before their last step. The restored one needs it
# open; the original, which must stay alive meanwhile, is held by SIGSTOP instead.
# (Both write the same --outfile, so the files are not compared here.)
kill -STOP "$pid"
touch "$T/gate"
restore_fg restored "$img"
check_restored_output restored "$K" ref
mt_no_errors "$T/restored.out"
log "restored while the original (pid $pid) was alive: output completes the uninterrupted run"

kill -CONT "$pid"
wait_exit "$pid"
[ "$RC" -eq "$REF_RC" ] || fail "the original exited with $RC, the uninterrupted run with $REF_RC: $(head -c 1000 "$T/orig.err")"
cmp -s "$T/ref.out" "$T/orig.out" || { show_diff "$T/ref.out" "$T/orig.out"; fail "the original's output differs from the uninterrupted run"; }
log "the original then finished with the uninterrupted output"
