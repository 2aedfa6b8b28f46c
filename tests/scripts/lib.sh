# shellcheck shell=bash
# Helpers for the end-to-end checkpoint/restart tests. Sourced by the scripts next to it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   ocr_init "$BIN_DIR" "$APP"          # checks the tools, makes the private temp dir
#
# Conventions
#   - Every test works in its own directory $T (mktemp -d, removed on exit unless
#     OCR_KEEP_TMP=1) and never writes into the source or build tree; images go to
#     $T/snap (and OMPI_CR_SNAPSHOT_DIR points into $T, so nothing lands in $HOME).
#   - Nothing depends on timing: the program waits before its last step until a gate
#     file exists (stateful_app --gate), so a checkpoint can never race its end; polls
#     have a generous upper bound (OCR_WAIT_LIMIT seconds) only to report hangs
#     clearly before ctest's TIMEOUT fires.
#   - Every process a test starts is recorded and killed (by pid) on exit.
#   - A failed check prints "FAIL: <what>" with the evidence and exits 1.

set -euo pipefail

OCR_WAIT_LIMIT=${OCR_WAIT_LIMIT:-240}  # seconds; hang detection only
OCR_TOOL_TIMEOUT=${OCR_TOOL_TIMEOUT:-240}
OCR_PIDS=()
OCR_TMP=""
T=""

log() { printf '[%s] %s\n' "${OCR_TEST_NAME:-e2e}" "$*"; }

fail() {
  printf '\nFAIL: %s\n' "$*" >&2
  if [ -n "$OCR_TMP" ] && [ -d "$OCR_TMP" ]; then
    printf -- '--- files in %s:\n' "$OCR_TMP" >&2
    (cd "$OCR_TMP" && find . -maxdepth 2 -printf '%10s  %p\n' 2>/dev/null | sort -k2 | head -60) >&2 || true
    local f
    for f in "$OCR_TMP"/*.err; do
      [ -s "$f" ] || continue
      printf -- '--- last lines of %s:\n' "${f##*/}" >&2
      tail -n 8 "$f" >&2 || true
    done
  fi
  exit 1
}

skip() {
  printf 'SKIP: %s\n' "$*"
  exit 77
}

ocr_cleanup() {
  local rc=$? p
  for p in "${OCR_PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill -9 "$p" 2>/dev/null || true; fi
  done
  for p in "${OCR_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$OCR_TMP" ] && [ -d "$OCR_TMP" ]; then
    if [ "${OCR_KEEP_TMP:-0}" = 1 ]; then
      echo "kept $OCR_TMP" >&2
    else
      rm -rf -- "$OCR_TMP"
    fi
  fi
  if [ $rc -eq 0 ]; then log "PASS"; fi
  return $rc
}

# ocr_init BIN_DIR APP
ocr_init() {
  [ $# -ge 2 ] || { echo "usage: $0 BIN_DIR APP ..." >&2; exit 2; }
  OCR_TEST_NAME=${OCR_TEST_NAME:-$(basename "$0" .sh)}
  [ -d "$1" ] || fail "bin directory $1 does not exist (build first)"
  OCR_BIN=$(cd "$1" && pwd)
  local t
  for t in ompi-cr-run ompi-checkpoint ompi-restart ompi-cr-info; do
    [ -x "$OCR_BIN/$t" ] || fail "$OCR_BIN/$t is missing (not built?)"
  done
  [ -x "$2" ] || fail "test program $2 is missing (not built?)"
  OCR_APP=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
  OCR_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ompi-cr-e2e.XXXXXX")
  T=$OCR_TMP
  trap ocr_cleanup EXIT
  trap 'exit 130' INT TERM
  export OMPI_CR_SNAPSHOT_DIR=$T/snap-default
  mkdir -p "$T/snap"
  log "bin=$OCR_BIN app=$OCR_APP tmp=$T"
}

# ---------------------------------------------------------------- processes ----

# proc_alive PID: the process exists and is not a zombie
proc_alive() {
  local st
  st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# start_cr NAME OUTFILE GATE APPARGS... : run the app under ompi-cr-run in the
# background; stdout -> $T/NAME.out, stderr -> $T/NAME.err; sets PID.
start_cr() {
  local name=$1 outfile=$2 gate=$3
  shift 3
  "$OCR_BIN/ompi-cr-run" --snapshot-dir "$T/snap" -- "${OCR_RUN_APP:-$OCR_APP}" "$@" \
    --outfile "$outfile" --gate "$gate" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
  PID=$!
  OCR_PIDS+=("$PID")
  log "started $name under ompi-cr-run: pid $PID"
}

# start_restore NAME IMAGE : ompi-restart in the background; sets PID (the restored
# process runs in the foreground of ompi-restart, so this is its pid too).
start_restore() {
  local name=$1 image=$2
  "$OCR_BIN/ompi-restart" --image "$image" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
  PID=$!
  OCR_PIDS+=("$PID")
  log "started ompi-restart of ${image##*/} as $name: pid $PID"
}

# wait_step FILE STEP PID : wait until FILE holds the line "step STEP digest ..."
wait_step() {
  local file=$1 step=$2 pid=$3 waited=0
  while ! grep -q -m1 "^step $step digest " "$file" 2>/dev/null; do
    if ! proc_alive "$pid"; then
      grep -q -m1 "^step $step digest " "$file" 2>/dev/null && return 0
      fail "pid $pid ended before printing step $step in ${file##*/} (last line: '$(tail -n1 "$file" 2>/dev/null)')"
    fi
    if grep -q -m1 '^final ' "$file" 2>/dev/null; then
      fail "${file##*/} reached its end without a line for step $step"
    fi
    sleep 0.02
    waited=$((waited + 1))
    [ $waited -lt $((OCR_WAIT_LIMIT * 50)) ] || fail "no step $step in ${file##*/} after ${OCR_WAIT_LIMIT}s (hang?)"
  done
}

# wait_exit PID : wait for a background child; sets RC
wait_exit() {
  local pid=$1 waited=0
  while proc_alive "$pid"; do
    sleep 0.02
    waited=$((waited + 1))
    [ $waited -lt $((OCR_WAIT_LIMIT * 50)) ] || fail "pid $pid still running after ${OCR_WAIT_LIMIT}s (hang?)"
  done
  RC=0
  wait "$pid" || RC=$?
}

# kill9 PID : SIGKILL a child and reap it
kill9() {
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  log "killed pid $1"
}

# --------------------------------------------------------------- the tools ----

# checkpoint NAME PID [ARGS...] : ompi-checkpoint must succeed; sets IMAGE
checkpoint() {
  local name=$1 pid=$2 rc=0 last
  shift 2
  timeout -k 10 "$OCR_TOOL_TIMEOUT" "$OCR_BIN/ompi-checkpoint" --pid "$pid" --snapshot-dir "$T/snap" "$@" \
    >"$T/$name.out" 2>"$T/$name.err" </dev/null || rc=$?
  if [ $rc -ne 0 ]; then
    fail "ompi-checkpoint --pid $pid $* exited with $rc: $(head -c 2000 "$T/$name.err")"
  fi
  last=$(tail -n 1 "$T/$name.out")
  case $last in
    "Image: /"*) IMAGE=${last#Image: } ;;
    *) fail "ompi-checkpoint: last line of stdout is '$last', expected 'Image: <absolute path>'" ;;
  esac
  [ -e "$IMAGE" ] || fail "ompi-checkpoint reported image $IMAGE, which does not exist"
  case $IMAGE in
    "$T/snap/"*) ;;
    *) fail "image $IMAGE is not inside the requested snapshot directory $T/snap" ;;
  esac
  log "checkpoint of pid $pid${*:+ $*}: $IMAGE ($(du -sh "$IMAGE" | cut -f1))"
}

# restore_fg NAME IMAGE : ompi-restart in the foreground; stdout -> $T/NAME.out; sets RC
restore_fg() {
  local name=$1 image=$2
  RC=0
  timeout -k 10 "$OCR_TOOL_TIMEOUT" "$OCR_BIN/ompi-restart" --image "$image" \
    >"$T/$name.out" 2>"$T/$name.err" </dev/null || RC=$?
  [ $RC -ne 124 ] || fail "ompi-restart --image $image did not finish within ${OCR_TOOL_TIMEOUT}s"
  log "ompi-restart of ${image##*/} ($name) exited with $RC"
}

# info_ok IMAGE : ompi-cr-info must accept a good image
info_ok() {
  local rc=0
  timeout -k 10 60 "$OCR_BIN/ompi-cr-info" "$1" >"$T/info.out" 2>"$T/info.err" </dev/null || rc=$?
  [ $rc -eq 0 ] || fail "ompi-cr-info $1 exited with $rc on a good image: $(head -c 1000 "$T/info.err")"
}

# ------------------------------------------------------------ the program ----

# run_reference NAME APPARGS... : the uninterrupted run, no preload;
# $T/NAME.out, $T/NAME.file(.stdio); sets REF_RC
run_reference() {
  local name=$1
  shift
  REF_RC=0
  "${OCR_RUN_APP:-$OCR_APP}" "$@" --outfile "$T/$name.file" >"$T/$name.out" 2>"$T/$name.err" </dev/null || REF_RC=$?
  [ $REF_RC -lt 100 ] || fail "reference run failed with $REF_RC: $(cat "$T/$name.err")"
  [ ! -s "$T/$name.err" ] || fail "reference run wrote to stderr: $(head -c 1000 "$T/$name.err")"
  grep -q '^final ' "$T/$name.out" || fail "reference run printed no final line"
  log "reference: $(grep -c '' "$T/$name.out") lines, exit code $REF_RC, $(tail -n 1 "$T/$name.out")"
}

# app_steps APPARGS... : the --steps value (default 40)
app_steps() {
  local steps=40
  while [ $# -gt 0 ]; do
    case $1 in
      --steps) steps=$2; shift 2 ;;
      --steps=*) steps=${1#--steps=}; shift ;;
      *) shift ;;
    esac
  done
  echo "$steps"
}

# ---------------------------------------------------------------- comparing ----

# first_step FILE : step number of the first line ("final" -> 999999999)
first_step() {
  local first
  first=$(head -n 1 "$1")
  case $first in
    "step "*) first=${first#step }; echo "${first%% *}" ;;
    "final "*) echo 999999999 ;;
    *) fail "${1##*/} starts with '$first', not with a line of the program" ;;
  esac
}

# show_diff A B : a short diff for failure messages
show_diff() { diff "$1" "$2" | head -n 12 >&2 || true; }

# check_tail A R : R is a non-empty suffix of A that starts at a line boundary;
# sets TAIL_START (byte offset in A where R begins)
check_tail() {
  local a=$1 r=$2 la lr
  la=$(stat -c %s "$a")
  lr=$(stat -c %s "$r")
  [ "$lr" -gt 0 ] || fail "${r##*/} is empty: the restored program printed nothing"
  if [ "$lr" -gt "$la" ] || ! tail -c "$lr" "$a" | cmp -s - "$r"; then
    show_diff "$a" "$r"
    fail "${r##*/} is not a tail of the uninterrupted output ${a##*/}"
  fi
  TAIL_START=$((la - lr))
  if [ $TAIL_START -gt 0 ] && [ "$(tail -c "+$TAIL_START" "$a" | head -c 1 | od -An -tx1 | tr -d ' ')" != 0a ]; then
    fail "${r##*/} does not start at a line boundary of ${a##*/}"
  fi
}

# check_prefix A LEN O : the first LEN bytes of O equal those of A
check_prefix() {
  local a=$1 len=$2 o=$3
  if ! cmp -s -n "$len" "$a" "$o" || [ "$(stat -c %s "$o")" -lt "$len" ]; then
    show_diff "$a" "$o"
    fail "${o##*/} does not start with the first $len bytes of ${a##*/}"
  fi
}

# check_after STEP R : R begins after line STEP (which was printed before the checkpoint)
check_after() {
  local step=$1 r=$2 fs
  fs=$(first_step "$r")
  [ "$fs" -gt "$step" ] || fail "${r##*/} starts at step $fs, but step $step was printed before the checkpoint was requested"
}

# check_files FILE REF : the program's files (FILE and FILE.stdio) equal the reference ones
check_files() {
  local f=$1 ref=$2 x
  for x in "" .stdio; do
    [ -f "$f$x" ] || fail "${f##*/}$x does not exist"
    if ! cmp -s "$f$x" "$ref$x"; then
      cmp "$f$x" "$ref$x" >&2 || true
      show_diff "$f$x" "$ref$x"
      fail "${f##*/}$x differs from the uninterrupted run's ${ref##*/}$x"
    fi
  done
}

# offset_of_line A LINE : byte offset of the exact line in A
offset_of_line() {
  local hit
  hit=$(grep -b -x -F -m1 -- "$2" "$1") || fail "line '$2' does not occur in ${1##*/}"
  echo "${hit%%:*}"
}

# check_restored_output NAME STEP REF : the usual checks after a restore ran to completion
#   $T/NAME.out is a tail of $T/REF.out, starting after IMAGE_STEP, exit code REF_RC
check_restored_output() {
  local name=$1 after=$2 ref=$3
  [ "$RC" -eq "$REF_RC" ] || fail "restored run $name exited with $RC, the uninterrupted run with $REF_RC: $(head -c 1000 "$T/$name.err")"
  check_tail "$T/$ref.out" "$T/$name.out"
  check_after "$after" "$T/$name.out"
  log "$name: restored output is the last $(grep -c '' "$T/$name.out") lines of the uninterrupted run (from step $(first_step "$T/$name.out"))"
}

# ---------------------------------------------------------------- bad input ----

# expect_clean_failure WHAT NAME RC REGEX NAMES : the error contract of section 8
#   exit code non-zero and not from a signal or a timeout, exactly one line on stderr,
#   matching REGEX (case-insensitive) and naming NAMES (fixed string; "" = no check)
expect_clean_failure() {
  local what=$1 name=$2 rc=$3 regex=$4 names=$5 err=$T/$2.err lines
  [ "$rc" -ne 0 ] || fail "$what succeeded (exit 0), expected a refusal"
  [ "$rc" -ne 124 ] || fail "$what hung (timeout)"
  [ "$rc" -lt 128 ] || fail "$what crashed: exit code $rc (signal $((rc - 128)))"
  if grep -Eqi 'segmentation fault|core dumped|terminate called|sanitizer|stack smashing|double free|assertion .*failed' "$err"; then
    fail "$what crashed: $(head -c 1000 "$err")"
  fi
  lines=$(grep -c '' "$err" || true)
  [ "$lines" -eq 1 ] || fail "$what: expected exactly one line on stderr, got $lines: $(head -c 2000 "$err")"
  grep -Eqi -- "$regex" "$err" || fail "$what: stderr does not give the expected reason (/$regex/): $(cat "$err")"
  if [ -n "$names" ]; then
    grep -qF -- "$names" "$err" || fail "$what: stderr does not name '$names': $(cat "$err")"
  fi
  log "$what refused (exit $rc): $(cat "$err")"
}

# expect_restore_fails NAME IMAGE REGEX NAMES [PROGRAM_OUTFILE] : ompi-restart must refuse
# IMAGE cleanly, print no program output, and leave the program's files untouched.
# Runs as the user in OCR_AS_USER (a setpriv prefix) when that is set.
expect_restore_fails() {
  local name=$1 image=$2 regex=$3 names=$4 pfile=${5:-} before="" after="" rc=0
  [ -z "$pfile" ] || before=$(sha256sum "$pfile" "$pfile.stdio" 2>/dev/null || true)
  # shellcheck disable=SC2086
  timeout -k 10 "$OCR_TOOL_TIMEOUT" ${OCR_AS_USER:-} "${OCR_RESTART:-$OCR_BIN/ompi-restart}" --image "$image" \
    >"$T/$name.out" 2>"$T/$name.err" </dev/null || rc=$?
  expect_clean_failure "ompi-restart --image ${image##*/} ($name)" "$name" "$rc" "$regex" "$names"
  if grep -Eq '^(step [0-9]+ digest|final )' "$T/$name.out"; then
    fail "$name: the refused restore printed program output (partial restore): $(head -n 3 "$T/$name.out")"
  fi
  if [ -n "$pfile" ]; then
    after=$(sha256sum "$pfile" "$pfile.stdio" 2>/dev/null || true)
    [ "$before" = "$after" ] || fail "$name: the refused restore changed the program's files"
  fi
}

# expect_info_fails NAME IMAGE : ompi-cr-info must exit 1 on a bad image, without crashing
expect_info_fails() {
  local name=$1 image=$2 rc=0
  timeout -k 10 60 "$OCR_BIN/ompi-cr-info" "$image" >"$T/$name.out" 2>"$T/$name.err" </dev/null || rc=$?
  [ $rc -eq 1 ] || fail "ompi-cr-info ${image##*/} ($name) exited with $rc, expected 1 for a bad image: $(head -c 500 "$T/$name.err")"
}

# ------------------------------------------------------------ image bytes ----

# image_file IMAGE : the file holding the image header (IMAGE itself, or the file in
# an image directory that starts with the magic)
image_file() {
  local img=$1 f
  if [ -f "$img" ]; then echo "$img"; return; fi
  [ -d "$img" ] || fail "image $img is neither a file nor a directory"
  for f in "$img"/* "$img"/*/*; do
    [ -f "$f" ] || continue
    if [ "$(head -c 8 "$f")" = OMPICRIM ]; then echo "$f"; return; fi
  done
  fail "no file in image directory $img starts with the magic OMPICRIM"
}

# u64 FILE OFFSET / u32 FILE OFFSET : little-endian integers of the image header
u64() { od -An -tu8 -j "$2" -N 8 "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N 4 "$1" | tr -d ' '; }

# read_header FILE : sets HDR_SIZE, REC_OFF, REC_SIZE, DATA_OFF, DATA_SIZE, FILE_SIZE
# (layout of struct ocr_image_header, src/crs/image_format.h, format version 1)
read_header() {
  local f=$1
  FILE_SIZE=$(stat -c %s "$f")
  [ "$FILE_SIZE" -ge 4096 ] || fail "image $f is only $FILE_SIZE bytes"
  [ "$(head -c 8 "$f")" = OMPICRIM ] || fail "image $f does not start with OMPICRIM"
  HDR_SIZE=$(u32 "$f" 12)
  REC_OFF=$(u64 "$f" 56)
  REC_SIZE=$(u64 "$f" 64)
  DATA_OFF=$(u64 "$f" 80)
  DATA_SIZE=$(u64 "$f" 88)
  if [ "$HDR_SIZE" -lt 64 ] || [ "$HDR_SIZE" -gt 4096 ] || [ "$REC_OFF" -lt "$HDR_SIZE" ] ||
    [ "$REC_SIZE" -le 0 ] || [ $((REC_OFF + REC_SIZE)) -gt "$FILE_SIZE" ] ||
    [ "$DATA_OFF" -lt $((REC_OFF + REC_SIZE)) ] || [ "$DATA_SIZE" -le 0 ] ||
    [ $((DATA_OFF + DATA_SIZE)) -gt "$FILE_SIZE" ]; then
    fail "image header of $f does not match format v1 as this test knows it (header $HDR_SIZE, records $REC_OFF+$REC_SIZE, data $DATA_OFF+$DATA_SIZE, file $FILE_SIZE): update read_header in tests/scripts/lib.sh"
  fi
}

# flip_byte FILE OFFSET : flip the lowest bit of one byte in place
flip_byte() {
  local f=$1 off=$2 old new
  old=$(od -An -tu1 -j "$off" -N 1 "$f" | tr -d ' ')
  [ -n "$old" ] || fail "flip_byte: offset $off is past the end of $f"
  new=$((old ^ 1))
  # shellcheck disable=SC2059
  printf "\\$(printf '%03o' "$new")" | dd of="$f" bs=1 seek="$off" count=1 conv=notrunc status=none
  [ "$(od -An -tu1 -j "$off" -N 1 "$f" | tr -d ' ')" = "$new" ] || fail "flip_byte: could not write $f at $off"
}

# copy_image IMAGE DEST : a copy of the image (file or directory) at DEST; prints the
# path of its header file
copy_image() {
  local img=$1 dest=$2 hf
  rm -rf -- "$dest"
  cp -a -- "$img" "$dest"
  if [ -d "$img" ]; then
    hf=$(image_file "$img")
    echo "$dest/${hf#"$img"/}"
  else
    echo "$dest"
  fi
}
