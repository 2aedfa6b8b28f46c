# shellcheck shell=bash
# Helpers of the multi-threaded end-to-end tests (mt_*.sh), on top of lib.sh.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/mt_lib.sh"   # sources lib.sh too
#
# The mt_* programs (tests/programs/mt_*.c) follow stateful_app's conventions
# (--outfile, --gate, --steps, "step <i> digest ..." lines, "final ..." line), so every
# lib.sh helper applies; their lines also carry "errors N", the count of failed
# self-checks, which must stay 0.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# mt_pause_ms MS : sleep MS milliseconds (0 = no sleep)
mt_pause_ms() {
  [ "$1" -gt 0 ] || return 0
  sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
}

# mt_no_errors FILE : no line of FILE reports failed self-checks
mt_no_errors() {
  local bad
  bad=$(grep -v -m1 ' errors 0$' "$1" || true)
  [ -z "$bad" ] || fail "${1##*/} reports failed self-checks: '$bad' (stderr: $(head -c 1500 "${1%.out}.err" 2>/dev/null))"
}

# mt_plain_equals_reference NAME APPARGS... : the program under ompi-cr-run, no
# checkpoint, prints exactly the reference output and exits with the same code.
mt_plain_equals_reference() {
  local name=$1
  shift
  touch "$T/$name.gate"
  start_cr "$name" "$T/$name.file" "$T/$name.gate" "$@"
  wait_exit "$PID"
  [ "$RC" -eq "$REF_RC" ] || fail "under ompi-cr-run (no checkpoint) the program exited with $RC, uninterrupted with $REF_RC: $(head -c 1000 "$T/$name.err")"
  cmp -s "$T/ref.out" "$T/$name.out" || { show_diff "$T/ref.out" "$T/$name.out"; fail "output under ompi-cr-run (no checkpoint) differs from the plain run"; }
  check_files "$T/$name.file" "$T/ref.file"
  log "under ompi-cr-run without checkpoint: identical output, files and exit code"
}

# mt_kill_restore_cycle NAME K DELAY_MS APPARGS... : run under ompi-cr-run, wait for
# line "step K", wait DELAY_MS more, checkpoint, kill -9, restore in the foreground, and
# require the stitched output, exit code and files of the uninterrupted run ($T/ref.*).
mt_kill_restore_cycle() {
  local name=$1 k=$2 delay=$3 pid img
  shift 3
  start_cr "$name" "$T/$name.file" "$T/$name.gate" "$@"
  pid=$PID
  wait_step "$T/$name.out" "$k" "$pid"
  mt_pause_ms "$delay"
  proc_alive "$pid" || fail "$name: pid $pid ended before the checkpoint: $(head -c 1000 "$T/$name.err")"
  checkpoint "$name.ckpt" "$pid"
  img=$IMAGE
  kill9 "$pid"
  touch "$T/$name.gate"
  restore_fg "$name.restore" "$img"
  check_restored_output "$name.restore" "$k" ref
  mt_no_errors "$T/$name.restore.out"
  check_prefix "$T/ref.out" "$TAIL_START" "$T/$name.out"
  check_files "$T/$name.file" "$T/ref.file"
  log "$name: checkpoint after step $k (+${delay} ms), kill -9, restore: stitched output == uninterrupted run; exit code $RC"
  rm -rf -- "$img"
}
