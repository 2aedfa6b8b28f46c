#!/usr/bin/env bash
# Layout changes between incremental images (issue 3: "layout changes between checkpoints
# (mmap, munmap, mremap, brk growth and shrink, a region replaced by another at the same
# address)", plus MADV_DONTNEED).
#
#   incremental_layout.sh BIN_DIR LAYOUT_APP [--backend uffd|hash|auto]
#
# layout_app (tests/programs/layout_app.c; its header lists every change per round):
#  1. Reference run A (no preload, no gates).
#  2. Under ompi-cr-run: full image after step 0, then for rounds 1..4: open gate k, wait
#     for "step k", incremental image k (chain of k+1 images, parent = image k-1, the
#     backend as forced). Every region the round created, moved, grew, split or replaced
#     must be restorable from the chain; every page the round dropped must come back as
#     zero (anonymous) or as the file's bytes (private file mapping), not as the parent's
#     bytes. kill -9 after image 4.
#  3. Restore the tip (round 5 then runs in the restored process: brk growth, a new mmap,
#     a munmap, writes everywhere): output is a tail of A after step 4 (per-region hashes,
#     the program's own checks of dropped pages "checks ok", the digest), exit code and
#     files equal. The killed run's output starts with A minus the restored tail.
#  4. Restore each older link k = 1..3 too (chains of 2..4 images; k = 2 is the
#     mremap/brk shrink/DONTNEED round): a tail of A after step k.
#  5. Compact the tip and restore the compacted image with the chain deleted: a tail of A
#     after step 4.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/inc_lib.sh"
ocr_init "$1" "$2"
shift 2
BACKEND=auto
while [ $# -gt 0 ]; do
  case $1 in
    --backend) BACKEND=$2; shift 2 ;;
    *) fail "usage: incremental_layout.sh BIN_DIR APP [--backend B]" ;;
  esac
done
OCR_TEST_NAME="incremental_layout/$BACKEND"
if [ "$BACKEND" != auto ]; then export OMPI_CR_DIRTY_TRACKING=$BACKEND; fi
case $BACKEND in auto | uffd) WANT_BACKEND=userfaultfd-wp ;; hash) WANT_BACKEND=page-hash ;; *) WANT_BACKEND=$BACKEND ;; esac
APP_ARGS=(--exit-code 12)
ROUNDS=4 # checkpointed rounds; round 5 runs after the restore

run_reference ref "${APP_ARGS[@]}"
grep -q '^step 5 digest [0-9a-f]* checks ok$' "$T/ref.out" || fail "the uninterrupted layout_app failed its own checks: $(grep '^step' "$T/ref.out")"

start_cr run "$T/run.file" "$T/go" "${APP_ARGS[@]}"
pid=$PID
wait_step "$T/run.out" 0 "$pid"
ckpt ckpt0 "$pid" "$T/snap" --full
IMGS=("$IMAGE")
for k in $(seq 1 $ROUNDS); do
  gate "$T/go" "$k"
  wait_step "$T/run.out" "$k" "$pid"
  ckpt "ckpt$k" "$pid" "$T/snap" --incremental
  IMGS+=("$IMAGE")
  expect_chain "$IMAGE" $((k + 1))
  [ "$INFO_BACKEND" = "$WANT_BACKEND" ] || fail "image $k: dirty pages found by '$INFO_BACKEND', expected '$WANT_BACKEND'"
  prev=${IMGS[$((k - 1))]}
  [ "$INFO_PARENT" = "${prev##*/}" ] || fail "image $k names parent '$INFO_PARENT', expected ${prev##*/}"
  cp "$T/info.out" "$T/info$k.out"
done
kill9 "$pid"
cmp -s <(head -c "$(stat -c %s "$T/run.out")" "$T/ref.out") "$T/run.out" || fail "the run under ompi-cr-run diverged from the reference before the kill"

gate "$T/go" 5
gate "$T/go" final
restore_fg tip "${IMGS[$ROUNDS]}"
restored_ok tip $ROUNDS
check_prefix "$T/ref.out" "$TAIL_START" "$T/run.out"
check_files "$T/run.file" "$T/ref.file"
log "tip (after round $ROUNDS): restored, round 5 ran in the restored process; output, exit code, files as uninterrupted"

for k in $(seq 1 $((ROUNDS - 1))); do
  restore_fg "link$k" "${IMGS[$k]}"
  restored_ok "link$k" "$k"
  check_files "$T/run.file" "$T/ref.file"
  log "image $k (chain of $((k + 1)), after round $k): restored output is a tail of the uninterrupted run"
done

rc=0
"$OCR_BIN/ompi-cr-compact" "${IMGS[$ROUNDS]}" -o "$T/compact.crimg" >"$T/compact.out" 2>"$T/compact.err" || rc=$?
[ $rc -eq 0 ] || fail "ompi-cr-compact exited with $rc: $(cat "$T/compact.err")"
rm -rf -- "$(dirname "${IMGS[0]}")"
restore_fg compacted "$T/compact.crimg"
restored_ok compacted $ROUNDS
cmp -s "$T/compacted.out" "$T/tip.out" || { show_diff "$T/tip.out" "$T/compacted.out"; fail "the compacted tip restores differently from its chain"; }
check_files "$T/run.file" "$T/ref.file"
log "compacted tip restores identically with the chain deleted"
