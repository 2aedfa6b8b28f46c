#!/usr/bin/env bash
# Checkpoint and continue: a process checkpointed twice (no kill) finishes exactly like
# the uninterrupted run; each of its images, restored afterwards, produces the right tail.
#
#   continue.sh BIN_DIR APP [K1 K2 [APP_ARGS...]]
#
# - the original's stdout equals A byte for byte, its files equal FA, same exit code;
# - the two images are distinct files;
# - restoring image i (taken after step Ki was printed) prints a non-empty tail of A that
#   starts after step Ki, exits with A's exit code, and leaves the files equal to FA
#   (the restored process rewrites them from its saved offsets).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ocr_init "$1" "$2"
K1=${3:-6}
K2=${4:-24}
shift $(($# < 4 ? $# : 4))
APP_ARGS=("$@")
[ ${#APP_ARGS[@]} -gt 0 ] || APP_ARGS=(--steps 40 --heap-mb 256 --step-ms 50 --exit-code 7)
[ "$K1" -lt "$K2" ] && [ "$K2" -lt "$(app_steps "${APP_ARGS[@]}")" ] || fail "need K1 < K2 < steps"

run_reference ref "${APP_ARGS[@]}"

start_cr orig "$T/orig.file" "$T/gate" "${APP_ARGS[@]}"
pid=$PID
wait_step "$T/orig.out" "$K1" "$pid"
checkpoint ckpt1 "$pid"
img1=$IMAGE
proc_alive "$pid" || fail "the process did not survive a checkpoint without --term"
wait_step "$T/orig.out" "$K2" "$pid"
checkpoint ckpt2 "$pid"
img2=$IMAGE
[ "$img1" != "$img2" ] || fail "both checkpoints reported the same image $img1"
[ -e "$img1" ] || fail "the first image $img1 disappeared after the second checkpoint"
touch "$T/gate"
wait_exit "$pid"
[ "$RC" -eq "$REF_RC" ] || fail "the checkpointed process exited with $RC, the uninterrupted run with $REF_RC: $(cat "$T/orig.err")"
cmp -s "$T/ref.out" "$T/orig.out" || { show_diff "$T/ref.out" "$T/orig.out"; fail "the output of the process checkpointed twice differs from the uninterrupted run"; }
check_files "$T/orig.file" "$T/ref.file"
log "process checkpointed twice and continued: identical output, files and exit code"

info_ok "$img1"
info_ok "$img2"
restore_fg restore1 "$img1"
check_restored_output restore1 "$K1" ref
check_files "$T/orig.file" "$T/ref.file"
restore_fg restore2 "$img2"
check_restored_output restore2 "$K2" ref
check_files "$T/orig.file" "$T/ref.file"
s1=$(first_step "$T/restore1.out")
s2=$(first_step "$T/restore2.out")
[ "$s1" -le "$s2" ] || fail "the earlier image resumed at step $s1, after the later one ($s2)"
