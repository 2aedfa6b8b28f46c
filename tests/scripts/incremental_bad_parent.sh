#!/usr/bin/env bash
# A missing or corrupt parent is refused with a clear error naming it (issue 3).
#
#   incremental_bad_parent.sh BIN_DIR DIRTY_APP CASE
#
# Setup: dirty_app (16 MiB, two rounds) under ompi-cr-run: full image 0.crimg after step
# 0, incremental 1.crimg after round 1, incremental 2.crimg after round 2 (parent 1,
# grandparent 0), kill -9. Control: the intact chain restores correctly (so a refusal
# below cannot come from a chain that was unusable anyway). Then the CASE damages a copy
# of the chain and requires, for ompi-restart --image 2.crimg, ompi-cr-info 2.crimg and
# ompi-cr-compact 2.crimg: exit code non-zero and < 128 (ompi-cr-info: exactly 1), no
# timeout, no crash, exactly one line on stderr that gives the reason and names the
# damaged image's path; ompi-restart prints no program output and leaves the program's
# files untouched.
#
# CASE:
#   missing_parent       1.crimg deleted
#   missing_grandparent  0.crimg deleted (the error names 0.crimg, not only 1.crimg)
#   flip_parent_pages    one bit flipped in 1.crimg's page data (run checksum)
#   flip_parent_header   one bit flipped in 1.crimg's header (header checksum)
#   flip_parent_records  one bit flipped in 1.crimg's records (records checksum)
#   truncated_parent     1.crimg cut in the middle of its page data
#   garbage_parent       1.crimg overwritten with bytes that are no image
#   replaced_parent      0.crimg and 1.crimg replaced by the images of ANOTHER run of the
#                        same program at the same points (same sizes, valid checksums, a
#                        valid chain of their own): the parent hash recorded in 2.crimg
#                        does not match 1.crimg
#   older_link_as_parent 1.crimg replaced by a copy of 0.crimg (valid, same process)
#   checkpoint_parent_gone  (checkpoint side) the running process's previous image is
#                        deleted: ompi-checkpoint --incremental is refused with one line
#                        naming the reason, the process goes on; --full then works, and
#                        an incremental on top of it again; the run ends correctly
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/inc_lib.sh"
CASE=${3:?"usage: incremental_bad_parent.sh BIN_DIR APP CASE"}
OCR_TEST_NAME="incremental_bad_parent/$CASE"
ocr_init "$1" "$2"
APP_ARGS=(--heap-mb 16 --fractions "0.1,0.1,0.1" --exit-code 6)
[ -x "$OCR_BIN/ompi-cr-compact" ] || fail "$OCR_BIN/ompi-cr-compact is missing (not built?)"

RE_MISSING='no such file|missing|not found|does not exist|cannot open|gone'
RE_CORRUPT='checksum|hash|corrupt|mismatch|magic|not an ompi-cr image|version|invalid|damaged|truncat|too short|short read|end of file'
RE_OTHER='not the image|hash|mismatch|chain length|parent'

# make_chain NAME : a run checkpointed after steps 0, 1, 2 and killed; sets C0 C1 C2 and
# RUNFILE. The run stops at gate 3.
make_chain() {
  local name=$1 p
  RUNFILE=$T/$name.file
  start_cr "$name" "$RUNFILE" "$T/$name-go" "${APP_ARGS[@]}"
  p=$PID
  wait_step "$T/$name.out" 0 "$p"
  ckpt "$name-c0" "$p" "$T/snap-$name" --full
  C0=$IMAGE
  gate "$T/$name-go" 1
  wait_step "$T/$name.out" 1 "$p"
  ckpt "$name-c1" "$p" "$T/snap-$name" --incremental
  C1=$IMAGE
  gate "$T/$name-go" 2
  wait_step "$T/$name.out" 2 "$p"
  ckpt "$name-c2" "$p" "$T/snap-$name" --incremental
  C2=$IMAGE
  kill9 "$p"
}

# all_refuse REGEX NAMES : restore, info and compact of the tip refuse, naming NAMES
all_refuse() {
  local regex=$1 names=$2 rc=0
  expect_restore_fails restore "$TIP" "$regex" "$names" "$RUNFILE"
  info_fails_naming info "$TIP" "$regex" "$names"
  timeout -k 10 120 "$OCR_BIN/ompi-cr-compact" "$TIP" -o "$T/compact.crimg" \
    >"$T/compact.out" 2>"$T/compact.err" </dev/null || rc=$?
  expect_clean_failure "ompi-cr-compact ${TIP##*/}" compact "$rc" "$regex" "$names"
  [ ! -e "$T/compact.crimg" ] || fail "ompi-cr-compact left an output image behind after refusing"
  ! ls "$T"/compact.crimg.* >/dev/null 2>&1 || fail "ompi-cr-compact left a temporary file behind: $(ls "$T"/compact.crimg.*)"
}

if [ "$CASE" = checkpoint_parent_gone ]; then
  run_reference ref "${APP_ARGS[@]}"
  start_cr run "$T/run.file" "$T/go" "${APP_ARGS[@]}"
  pid=$PID
  wait_step "$T/run.out" 0 "$pid"
  ckpt c0 "$pid" "$T/snap" --full
  rm -f -- "$IMAGE"
  gate "$T/go" 1
  wait_step "$T/run.out" 1 "$pid"
  ckpt_fails c1 "$pid" "$T/snap" --incremental
  expect_clean_failure "ompi-checkpoint --incremental (parent deleted)" c1 "$RC" 'parent|earlier image|previous image' ""
  proc_alive "$pid" || fail "the process did not survive the refused checkpoint"
  [ -z "$(ls "$(dirname "$IMAGE")")" ] || fail "the refused checkpoint left files: $(ls "$(dirname "$IMAGE")")"
  ckpt c1full "$pid" "$T/snap" --full
  gate "$T/go" 2
  wait_step "$T/run.out" 2 "$pid"
  ckpt c2 "$pid" "$T/snap" --incremental
  expect_chain "$IMAGE" 2
  tip=$IMAGE
  gate "$T/go" 3
  gate "$T/go" final
  wait_exit "$pid"
  [ "$RC" -eq "$REF_RC" ] && cmp -s "$T/ref.out" "$T/run.out" || fail "the run that had a checkpoint refused did not end like the uninterrupted one"
  check_files "$T/run.file" "$T/ref.file"
  restore_fg restore "$tip"
  restored_ok restore 2
  check_files "$T/run.file" "$T/ref.file"
  exit 0
fi

run_reference ref "${APP_ARGS[@]}"
make_chain run
# control: the intact chain restores
gate "$T/run-go" 3
gate "$T/run-go" final
restore_fg control "$C2"
restored_ok control 2
check_files "$RUNFILE" "$T/ref.file"
log "control: the intact chain ${C0##*/} <- ${C1##*/} <- ${C2##*/} restores correctly"
TIP=$C2

case $CASE in
  missing_parent)
    rm -f -- "$C1"
    all_refuse "$RE_MISSING" "$C1"
    ;;
  missing_grandparent)
    rm -f -- "$C0"
    all_refuse "$RE_MISSING" "$C0"
    ;;
  flip_parent_pages)
    read_header "$C1"
    flip_byte "$C1" $((DATA_OFF + DATA_SIZE / 2 + 5))
    all_refuse "$RE_CORRUPT" "$C1"
    ;;
  flip_parent_header)
    flip_byte "$C1" 40 # seq: covered by the header checksum only
    all_refuse "$RE_CORRUPT" "$C1"
    ;;
  flip_parent_records)
    read_header "$C1"
    flip_byte "$C1" $((REC_OFF + REC_SIZE / 2))
    all_refuse "$RE_CORRUPT" "$C1"
    ;;
  truncated_parent)
    read_header "$C1"
    truncate -s $((DATA_OFF + DATA_SIZE / 2)) "$C1"
    all_refuse "$RE_CORRUPT" "$C1"
    ;;
  garbage_parent)
    head -c 100000 /dev/urandom >"$C1"
    all_refuse "$RE_CORRUPT" "$C1"
    ;;
  replaced_parent)
    keep=("$C0" "$C1" "$C2" "$RUNFILE")
    make_chain other
    # the other run's images 0 and 1 over ours: 1.crimg is then a valid image with a
    # valid parent, only not the one 2.crimg was taken on top of
    cp -- "$C0" "${keep[0]}"
    cp -- "$C1" "${keep[1]}"
    C0=${keep[0]} C1=${keep[1]} C2=${keep[2]} RUNFILE=${keep[3]}
    TIP=$C2
    info_ok "$C1" # a good image in itself
    all_refuse "$RE_OTHER" "$C1"
    ;;
  older_link_as_parent)
    cp -- "$C0" "$C1"
    info_ok "$C1"
    all_refuse "$RE_OTHER" "$C1"
    ;;
  *) fail "unknown case $CASE" ;;
esac
