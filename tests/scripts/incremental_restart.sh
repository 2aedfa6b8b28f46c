#!/usr/bin/env bash
# A restored process continues the chain (DESIGN.md section 4: "An incremental image's
# parent is the process's previous image (or the image it was restored from)").
#
#   incremental_restart.sh BIN_DIR DIRTY_APP [--backend uffd|hash|auto]
#
# dirty_app, 64 MiB, rounds with fractions 2%, 5%, 10%, 20%; each generation checkpoints
# into a snapshot directory of its own:
#   gen0 (ompi-cr-run): full image after step 0, incremental after round 1 (snap/), kill.
#   gen1: ompi-restart of snap/.../1.crimg given as a RELATIVE path through a symlinked
#         directory (cwd $T, "link/..."); round 2, incremental into snap2/ -> chain of 3
#         whose parent is the image restored from, named by its absolute real path
#         (another directory); round 3, incremental into snap2/ -> chain of 4, parent
#         named relative (same directory); kill.
#   gen2: ompi-restart of snap2's tip; round 4, incremental into snap3/ -> chain of 5; kill.
#   gen3: ompi-restart of snap3's tip in the foreground with the final gate open.
# Checks: every incremental image taken after a restore holds the round's written pages
# and at most OVERHEAD_MAX (1 MiB) more (tracking was re-armed on restore: nothing is
# saved whole); ompi-cr-info shows the chain lengths and parents above; gen3's output is
# a tail of the uninterrupted run A after step 4, exit code and files as A's; each
# generation's output is a piece of A at a line boundary (stitched, they give A); the
# middle of the cross-directory chain (snap2's first image, chain of 3) restores too.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/inc_lib.sh"
ocr_init "$1" "$2"
shift 2
BACKEND=auto
while [ $# -gt 0 ]; do
  case $1 in
    --backend) BACKEND=$2; shift 2 ;;
    *) fail "usage: incremental_restart.sh BIN_DIR APP [--backend B]" ;;
  esac
done
OCR_TEST_NAME="incremental_restart/$BACKEND"
if [ "$BACKEND" != auto ]; then export OMPI_CR_DIRTY_TRACKING=$BACKEND; fi
HEAP_MB=64
APP_ARGS=(--heap-mb "$HEAP_MB" --fractions "0.02,0.05,0.10,0.20" --exit-code 9)
OVERHEAD_MAX=$((1024 * 1024))

# segment_of_ref NAME : $T/NAME.out is a piece of ref.out that starts at a line boundary
segment_of_ref() {
  local f=$T/$1.out off len
  [ -s "$f" ] || fail "$1 printed nothing"
  off=$(offset_of_line "$T/ref.out" "$(head -n 1 "$f")")
  len=$(stat -c %s "$f")
  cmp -s <(tail -c "+$((off + 1))" "$T/ref.out" | head -c "$len") "$f" ||
    { show_diff "$T/ref.out" "$f"; fail "$1's output is not a piece of the uninterrupted run's"; }
}

# round_ckpt NAME PID K DIR : open gate K, wait for step K in NAME's output, incremental
# image into DIR; checks its size against the pages round K wrote
round_ckpt() {
  local name=$1 pid=$2 k=$3 dir=$4 n
  gate "$T/go" "$k"
  wait_step "$T/$name.out" "$k" "$pid"
  n=$(sed -n "s/^step $k digest [0-9a-f]* pages \\([0-9]*\\)\$/\\1/p" "$T/$name.out")
  ckpt "$name-r$k" "$pid" "$dir" --incremental
  [ "$SAVED" -ge $((n * 4096)) ] || fail "round $k: the incremental image saved $SAVED bytes, less than the $n pages written"
  [ $((SAVED - n * 4096)) -le $OVERHEAD_MAX ] ||
    fail "round $k ($name): the incremental image saved $((SAVED - n * 4096)) bytes beyond the $n pages written (limit $OVERHEAD_MAX): dirty tracking was not re-armed after the restore?"
  log "MEASURED round $k ($name): $n pages written, saved $SAVED B, $(((SAVED - n * 4096) / 4096)) pages beyond them"
}

run_reference ref "${APP_ARGS[@]}"

# gen0
start_cr gen0 "$T/gen0.file" "$T/go" "${APP_ARGS[@]}"
pid=$PID
wait_step "$T/gen0.out" 0 "$pid"
ckpt gen0-full "$pid" "$T/snap" --full
FULL=$SAVED
round_ckpt gen0 "$pid" 1 "$T/snap"
img1=$IMAGE
kill9 "$pid"  # ompi-cr-run: the program itself

# gen1: restore through a relative path in a symlinked directory
ln -s snap "$T/link"
rel=link/${img1#"$T"/snap/}
(cd "$T" && exec "$OCR_BIN/ompi-restart" --image "$rel" >"$T/gen1.out" 2>"$T/gen1.err" </dev/null) &
pid=$!
OCR_PIDS+=("$pid")
log "started ompi-restart --image $rel (relative, via a symlink) as gen1: pid $pid"
round_ckpt gen1 "$pid" 2 "$T/snap2"
img2=$IMAGE
expect_chain "$img2" 3
[ "$INFO_PARENT" = "$(realpath "$img1")" ] || fail "the first image after the restore names parent '$INFO_PARENT', expected the image restored from, $(realpath "$img1")"
[ "$SAVED" -lt $((FULL / 2)) ] || fail "the first incremental image after a restore saved $SAVED of $FULL bytes"
round_ckpt gen1 "$pid" 3 "$T/snap2"
img3=$IMAGE
expect_chain "$img3" 4
[ "$INFO_PARENT" = "${img2##*/}" ] || fail "the second image after the restore names parent '$INFO_PARENT', expected ${img2##*/}"
kill_restored "$pid"

# gen2
start_restore gen2 "$img3"
pid=$PID
round_ckpt gen2 "$pid" 4 "$T/snap3"
img4=$IMAGE
expect_chain "$img4" 5
[ "$INFO_PARENT" = "$img3" ] || fail "gen2's image names parent '$INFO_PARENT', expected $img3"
grep -q "^ *seq 0 .*$T/snap/" "$T/info.out" || fail "the chain of 5 does not reach back to the first directory: $(grep '^ *seq' "$T/info.out")"
kill_restored "$pid"

# gen3: to the end
gate "$T/go" final
restore_fg gen3 "$img4"
restored_ok gen3 4
check_files "$T/gen0.file" "$T/ref.file"
for g in gen0 gen1 gen2; do segment_of_ref "$g"; done
check_after 1 "$T/gen1.out"
check_after 3 "$T/gen2.out"
log "a chain of 5 across three directories and two restores restores like the uninterrupted run"

restore_fg mid "$img2"
restored_ok mid 2
check_files "$T/gen0.file" "$T/ref.file"
log "the middle link (chain of 3, parent in another directory) restores too"
