#!/usr/bin/env bash
# Three generations: a restored process is checkpointed again, twice.
#
#   generations.sh BIN_DIR APP [K1 K2 K3 [APP_ARGS...]]
#
# run (O0) -> checkpoint after step K1, kill -> restore in the background (R1) ->
# checkpoint the restored process (pid of its ompi-restart) after step K2, kill ->
# restore (R2) -> checkpoint after K3, kill -> restore (R3) to completion. Then:
# - R3 is a tail of A starting after K3; R2 starts after K2 at offset s2 of A and begins
#   with A[s2, s3); R1 starts after K1 at s1 and begins with A[s1, s2); O0 begins with
#   A[0, s1): the stitched output O0[0,s1) + R1[0,s2-s1) + R2[0,s3-s2) + R3 equals A;
# - the last exit code equals A's, and the program's files equal FA.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ocr_init "$1" "$2"
K1=${3:-5}
K2=${4:-15}
K3=${5:-27}
shift $(($# < 5 ? $# : 5))
APP_ARGS=("$@")
[ ${#APP_ARGS[@]} -gt 0 ] || APP_ARGS=(--steps 40 --heap-mb 256 --step-ms 50 --exit-code 9)
[ "$K1" -lt "$K2" ] && [ "$K2" -lt "$K3" ] && [ "$K3" -lt "$(app_steps "${APP_ARGS[@]}")" ] || fail "need K1 < K2 < K3 < steps"

run_reference ref "${APP_ARGS[@]}"
LAST=$(($(app_steps "${APP_ARGS[@]}") - 1))  # the program prints up to here before its gate

# A checkpoint asked for after step K lands a few steps later on a loaded machine. The
# next generation's checkpoint point must lie after where that generation resumed, or
# it is never printed: move it there (the stitching below uses the real resume points).
after_resume() {  # after_resume FILE PID K -> K, or later than the first step in FILE
  local file=$1 pid=$2 k=$3 first waited=0
  while [ ! -s "$file" ] && proc_alive "$pid"; do
    sleep 0.02
    waited=$((waited + 1))
    [ $waited -lt $((OCR_WAIT_LIMIT * 50)) ] || fail "no output in ${file##*/} after ${OCR_WAIT_LIMIT}s"
  done
  first=$(head -n 1 "$file" | awk '$1 == "step" {print $2}')
  [ -n "$first" ] && [ "$k" -le "$first" ] && k=$((first + 1))
  [ "$k" -le "$LAST" ] || k=$LAST
  echo "$k"
}

start_cr gen0 "$T/run.file" "$T/gate" "${APP_ARGS[@]}"
wait_step "$T/gen0.out" "$K1" "$PID"
checkpoint ckpt1 "$PID"
img1=$IMAGE
kill9 "$PID"

start_restore gen1 "$img1"
K2=$(after_resume "$T/gen1.out" "$PID" "$K2")
wait_step "$T/gen1.out" "$K2" "$PID"
checkpoint ckpt2 "$PID"
img2=$IMAGE
kill9 "$PID"

start_restore gen2 "$img2"
K3=$(after_resume "$T/gen2.out" "$PID" "$K3")
wait_step "$T/gen2.out" "$K3" "$PID"
checkpoint ckpt3 "$PID"
img3=$IMAGE
kill9 "$PID"

touch "$T/gate"
restore_fg gen3 "$img3"
check_restored_output gen3 "$K3" ref
s3=$TAIL_START
check_after "$K1" "$T/gen1.out"
check_after "$K2" "$T/gen2.out"
s1=$(offset_of_line "$T/ref.out" "$(head -n 1 "$T/gen1.out")")
s2=$(offset_of_line "$T/ref.out" "$(head -n 1 "$T/gen2.out")")
[ "$s1" -le "$s2" ] && [ "$s2" -le "$s3" ] || fail "generations resume out of order (offsets $s1, $s2, $s3)"
tail -c "+$((s2 + 1))" "$T/ref.out" | head -c "$((s3 - s2))" >"$T/a23"
check_prefix "$T/a23" "$((s3 - s2))" "$T/gen2.out"
tail -c "+$((s1 + 1))" "$T/ref.out" | head -c "$((s2 - s1))" >"$T/a12"
check_prefix "$T/a12" "$((s2 - s1))" "$T/gen1.out"
check_prefix "$T/ref.out" "$s1" "$T/gen0.out"
{
  head -c "$s1" "$T/gen0.out"
  head -c "$((s2 - s1))" "$T/gen1.out"
  head -c "$((s3 - s2))" "$T/gen2.out"
  cat "$T/gen3.out"
} >"$T/stitched.out"
cmp -s "$T/stitched.out" "$T/ref.out" || { show_diff "$T/ref.out" "$T/stitched.out"; fail "stitched output differs from the uninterrupted run"; }
check_files "$T/run.file" "$T/ref.file"
log "three generations: stitched output ($(grep -c '' "$T/stitched.out") lines) and files identical to the uninterrupted run"
