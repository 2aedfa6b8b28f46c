# shellcheck shell=bash
# Helpers of the incremental-image end-to-end tests (tests/scripts/incremental_*.sh), on
# top of lib.sh (sourced first, by the test):
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   source "$(dirname "${BASH_SOURCE[0]}")/inc_lib.sh"
#
# The programs dirty_app and layout_app are gated per round: round k starts when the file
# <gate>.k exists, the final line when <gate>.final exists (start_cr passes --gate).

# wait_agent PID : wait until the ompi-cr agent of PID has registered itself in the
# control directory (an .agent file with PID's current start time). For an ompi-restart
# that kept the checkpointed PID, PID is the waiter and the agent is its only child's
# (the process ompi-checkpoint follows too).
#   Why: the agent registers asynchronously, from its own thread, both at start-up and
#   after a restore (where it must first release the application threads, see
#   on_restored/checkpoint in src/crs/runtime.cpp). A program can therefore print its
#   first lines before ompi-checkpoint accepts it ("... is not running under ompi-cr");
#   after a restore that kept the PID, the killed original's stale .agent file (other
#   start time) is there meanwhile. Measured: 2 of 20 checkpoints right after a 1 MiB
#   program's first line, 9 of 20 right after a restored program's first line. These
#   tests are about images, not about that window, so they wait it out.
wait_agent() {
  local pid=$1 dir target exe kids st waited=0
  dir=${OMPI_CR_CONTROL_DIR:-/tmp/ompi-cr-$(id -u)}
  while :; do
    target=$pid
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    if [ "${exe##*/}" = ompi-cr-restore ]; then
      kids=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null || true)
      # shellcheck disable=SC2086
      set -- $kids
      [ $# -ne 1 ] || target=$1
    fi
    st=$(sed 's/^.*) //' "/proc/$target/stat" 2>/dev/null | awk '{ print $20 }')
    if [ -n "$st" ] && grep -qx "start_time=$st" "$dir/$target.agent" 2>/dev/null; then return 0; fi
    proc_alive "$pid" || fail "pid $pid ended before its ompi-cr agent registered"
    sleep 0.01
    waited=$((waited + 1))
    [ $waited -lt $((OCR_WAIT_LIMIT * 100)) ] || fail "the ompi-cr agent of pid $pid did not register within ${OCR_WAIT_LIMIT}s"
  done
}

# kill_restored PID : SIGKILL an ompi-restart running in the background and the restored
# process (its child when the PID was kept), and wait until both are gone: a restored
# child that outlived its waiter for a moment could still write to the program's files.
kill_restored() {
  local pid=$1 kids k
  kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
  for k in $kids; do kill -9 "$k" 2>/dev/null || true; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for k in $kids; do
    while proc_alive "$k"; do sleep 0.01; done
  done
  log "killed restored pid $pid${kids:+ (restored process $kids)}"
}

# ckpt NAME PID DIR [ARGS...] : ompi-checkpoint -v into snapshot directory DIR, must
# succeed. Sets IMAGE, SAVED (bytes of page data), UNCHANGED (bytes skipped as unchanged).
ckpt() {
  local name=$1 pid=$2 dir=$3 rc=0 last
  shift 3
  wait_agent "$pid"
  timeout -k 10 "$OCR_TOOL_TIMEOUT" "$OCR_BIN/ompi-checkpoint" --pid "$pid" --snapshot-dir "$dir" -v "$@" \
    >"$T/$name.out" 2>"$T/$name.err" </dev/null || rc=$?
  [ $rc -eq 0 ] || fail "ompi-checkpoint --pid $pid $* exited with $rc: $(head -c 2000 "$T/$name.err")"
  last=$(tail -n 1 "$T/$name.out")
  case $last in
    "Image: /"*) IMAGE=${last#Image: } ;;
    *) fail "ompi-checkpoint: last line of stdout is '$last', expected 'Image: <absolute path>'" ;;
  esac
  [ -f "$IMAGE" ] || fail "ompi-checkpoint reported image $IMAGE, which does not exist"
  case $IMAGE in
    "$dir/"*) ;;
    *) fail "image $IMAGE is not inside the requested snapshot directory $dir" ;;
  esac
  SAVED=$(sed -n 's/^  saved \([0-9][0-9]*\) bytes.*/\1/p' "$T/$name.out")
  UNCHANGED=$(sed -n 's/^  skipped unchanged: \([0-9][0-9]*\) bytes.*/\1/p' "$T/$name.out")
  [ -n "$SAVED" ] || fail "ompi-checkpoint -v printed no '  saved N bytes' line: $(cat "$T/$name.out")"
  [ -n "$UNCHANGED" ] || fail "ompi-checkpoint -v printed no '  skipped unchanged: N bytes' line"
  log "checkpoint ($name) of pid $pid${*:+ $*}: ${IMAGE#"$T"/}, saved $SAVED B ($(mib "$SAVED") MiB), unchanged $UNCHANGED B"
}

# ckpt_fails NAME PID DIR [ARGS...] : runs ompi-checkpoint that is expected to fail;
# sets RC (the caller checks the refusal, e.g. with expect_clean_failure)
# shellcheck disable=SC2034
ckpt_fails() {
  local name=$1 pid=$2 dir=$3
  shift 3
  wait_agent "$pid"
  RC=0
  timeout -k 10 "$OCR_TOOL_TIMEOUT" "$OCR_BIN/ompi-checkpoint" --pid "$pid" --snapshot-dir "$dir" "$@" \
    >"$T/$name.out" 2>"$T/$name.err" </dev/null || RC=$?
}

# mib BYTES : bytes in MiB with two decimals
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }

# gate PREFIX WHAT : open gate PREFIX.WHAT (a round number or "final")
gate() { : >"$1.$2"; }

# info IMAGE : ompi-cr-info must accept IMAGE; output in $T/info.out. Sets INFO_SAVED,
# INFO_INHERITED (pages), INFO_CHAIN (chain length, 1 for a full image), INFO_BACKEND,
# INFO_PARENT ("" for a full image).
# shellcheck disable=SC2034
info() {
  info_ok "$1"
  INFO_SAVED=$(sed -n 's/^Saved: *\([0-9][0-9]*\) bytes.*/\1/p' "$T/info.out")
  INFO_INHERITED=$(sed -n 's/^Inherited: *\([0-9][0-9]*\) pages.*/\1/p' "$T/info.out")
  INFO_CHAIN=$(sed -n 's/^Chain: *\([0-9][0-9]*\) images.*/\1/p' "$T/info.out")
  INFO_BACKEND=$(sed -n 's/^Chain: .*dirty pages found by \([^)]*\)).*/\1/p' "$T/info.out")
  INFO_PARENT=$(sed -n 's/^Parent: *\(.*\) (header hash [0-9a-f]*)$/\1/p' "$T/info.out")
  [ -n "$INFO_SAVED" ] || fail "ompi-cr-info $1 printed no 'Saved:' line"
  if grep -q '^Format:.*(incremental' "$T/info.out"; then
    [ -n "$INFO_CHAIN" ] && [ -n "$INFO_INHERITED" ] && [ -n "$INFO_PARENT" ] ||
      fail "ompi-cr-info $1: an incremental image without Chain/Inherited/Parent lines: $(head -n 12 "$T/info.out")"
  else
    INFO_CHAIN=1
    INFO_INHERITED=0
    INFO_BACKEND=none
    INFO_PARENT=""
  fi
}

# expect_chain IMAGE LEN : ompi-cr-info reports a chain of LEN images ending at IMAGE
expect_chain() {
  info "$1"
  [ "$INFO_CHAIN" = "$2" ] || fail "ompi-cr-info ${1#"$T"/}: chain of $INFO_CHAIN images, expected $2"
  if [ "$2" -gt 1 ]; then
    local links
    links=$(grep -c '^ *seq [0-9]' "$T/info.out" || true)
    [ "$links" = "$2" ] || fail "ompi-cr-info ${1#"$T"/}: lists $links links, expected $2"
  fi
}

# restored_ok NAME STEP : after restore_fg NAME, its output is a tail of ref.out starting
# after STEP, exit code as the reference (check_restored_output of lib.sh)
restored_ok() { check_restored_output "$1" "$2" ref; }

# info_fails_naming NAME IMAGE REGEX NAMES : ompi-cr-info refuses IMAGE with exit code 1,
# one line on stderr matching REGEX and naming NAMES
info_fails_naming() {
  local name=$1 image=$2 regex=$3 names=$4 rc=0
  timeout -k 10 60 "$OCR_BIN/ompi-cr-info" "$image" >"$T/$name.out" 2>"$T/$name.err" </dev/null || rc=$?
  [ $rc -eq 1 ] || fail "ompi-cr-info ${image##*/} ($name) exited with $rc, expected 1: $(head -c 500 "$T/$name.err")"
  expect_clean_failure "ompi-cr-info ${image##*/} ($name)" "$name" "$rc" "$regex" "$names"
}
