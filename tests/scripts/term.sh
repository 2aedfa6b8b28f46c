#!/usr/bin/env bash
# ompi-checkpoint --term: the process ends right after its image is committed, by
# itself; restoring the image finishes the run.
#
#   term.sh BIN_DIR APP [K [APP_ARGS...]]
#
# - ompi-checkpoint --term succeeds and prints the image; the process then ends without
#   any signal from the test;
# - its stdout O and the restored stdout R add up to A exactly (O + R == A: nothing runs
#   between the checkpoint and the end), R starts after step K;
# - the restored exit code equals A's and the files equal FA.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ocr_init "$1" "$2"
K=${3:-12}
shift $(($# < 3 ? $# : 3))
APP_ARGS=("$@")
[ ${#APP_ARGS[@]} -gt 0 ] || APP_ARGS=(--steps 40 --heap-mb 256 --step-ms 50 --exit-code 4)

run_reference ref "${APP_ARGS[@]}"
start_cr orig "$T/run.file" "$T/gate" "${APP_ARGS[@]}"
pid=$PID
wait_step "$T/orig.out" "$K" "$pid"
checkpoint ckpt "$pid" --term
img=$IMAGE
wait_exit "$pid"
log "the process ended after --term (wait status $RC)"
grep -q '^final ' "$T/orig.out" && fail "the process ran to its end despite --term"
touch "$T/gate"
restore_fg restored "$img"
check_restored_output restored "$K" ref
cat "$T/orig.out" "$T/restored.out" >"$T/joined.out"
cmp -s "$T/joined.out" "$T/ref.out" || { show_diff "$T/ref.out" "$T/joined.out"; fail "output before --term + restored output != uninterrupted output"; }
check_files "$T/run.file" "$T/ref.file"
