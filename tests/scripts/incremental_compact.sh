#!/usr/bin/env bash
# Compaction: ompi-cr-compact folds a chain into one full image that restores identically
# and needs no parent (DESIGN.md section 4, step 4: "A chain can be compacted into a full
# image offline, so old links can be deleted").
#
#   incremental_compact.sh BIN_DIR APP [--points "5 12 19 26"] [--backend B] [-- APP_ARGS...]
#
#  1. Reference run A. Under ompi-cr-run: full image after P1, incremental images after
#     P2..Pn, kill -9. Restore the tip (gate open): R_tip is a tail of A (control).
#  2. ompi-cr-compact TIP -o compact/tip.crimg, and ompi-cr-compact LINK2 with the default
#     output (LINK2 with .crimg -> .full.crimg). ompi-cr-info: full images (no parent,
#     chain of 1, nothing inherited), and the compacted tip holds at least what the tip
#     saved and at most what the whole chain saved.
#  3. Delete every image of the chain (the whole snapshot directory of the process).
#     Restore the compacted tip: its output equals R_tip byte for byte, exit code and
#     files as the uninterrupted run. Restore the compacted link 2: a tail of A after P2.
#  4. The compacted image can be the parent of a new chain: restore it in the background
#     (gate closed), take an incremental image of the restored process (its parent must
#     be the compacted image, chain of 2), kill, restore that: a tail of A, files equal.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/inc_lib.sh"
ocr_init "$1" "$2"
shift 2
[ -x "$OCR_BIN/ompi-cr-compact" ] || fail "$OCR_BIN/ompi-cr-compact is missing (not built?)"

POINTS="5 12 19 26"
BACKEND=auto
while [ $# -gt 0 ]; do
  case $1 in
    --points) POINTS=$2; shift 2 ;;
    --backend) BACKEND=$2; shift 2 ;;
    --) shift; break ;;
    *) fail "usage: incremental_compact.sh BIN_DIR APP [--points \"K...\"] [--backend B] [-- APP_ARGS...]" ;;
  esac
done
OCR_TEST_NAME="incremental_compact/$BACKEND"
APP_ARGS=("$@")
[ ${#APP_ARGS[@]} -gt 0 ] || APP_ARGS=(--steps 34 --heap-mb 64 --step-ms 40 --threads 1 --exit-code 10)
if [ "$BACKEND" != auto ]; then export OMPI_CR_DIRTY_TRACKING=$BACKEND; fi
read -r -a P <<<"$POINTS"
N=${#P[@]}
[ "$N" -ge 2 ] || fail "need at least two points"
STEPS=$(app_steps "${APP_ARGS[@]}")
[ "${P[$((N - 1))]}" -lt $((STEPS - 1)) ] || fail "the last point must be below $((STEPS - 1))"

run_reference ref "${APP_ARGS[@]}"

# 1. the chain, and the tip restored as a control
start_cr run "$T/run.file" "$T/gate" "${APP_ARGS[@]}"
pid=$PID
IMGS=()
total=0
for i in $(seq 1 "$N"); do
  wait_step "$T/run.out" "${P[$((i - 1))]}" "$pid"
  if [ "$i" -eq 1 ]; then kind=--full; else kind=--incremental; fi
  ckpt "ckpt$i" "$pid" "$T/snap" $kind
  IMGS+=("$IMAGE")
  total=$((total + SAVED))
done
tip_saved=$SAVED
kill9 "$pid"
tip=${IMGS[$((N - 1))]}
link2=${IMGS[1]}
chain_dir=$(dirname "$tip")
touch "$T/gate"
restore_fg tip "$tip"
restored_ok tip "${P[$((N - 1))]}"
check_files "$T/run.file" "$T/ref.file"

# 2. compaction
mkdir -p "$T/compact"
rc=0
"$OCR_BIN/ompi-cr-compact" "$tip" -o "$T/compact/tip.crimg" >"$T/compact1.out" 2>"$T/compact1.err" || rc=$?
[ $rc -eq 0 ] || fail "ompi-cr-compact $tip exited with $rc: $(cat "$T/compact1.err")"
rc=0
"$OCR_BIN/ompi-cr-compact" "$link2" >"$T/compact2.out" 2>"$T/compact2.err" || rc=$?
[ $rc -eq 0 ] || fail "ompi-cr-compact $link2 exited with $rc: $(cat "$T/compact2.err")"
link2_full=${link2%.crimg}.full.crimg
[ -f "$link2_full" ] || fail "ompi-cr-compact $link2 did not write the default output $link2_full: $(ls "$chain_dir")"
log "compacted: $(cat "$T/compact1.out"); $(cat "$T/compact2.out")"
mv "$link2_full" "$T/compact/link2.crimg"
for c in tip link2; do
  info "$T/compact/$c.crimg"
  grep -q '^Format:.*(full' "$T/info.out" || fail "compacted $c is not a full image: $(grep '^Format' "$T/info.out")"
  ! grep -q '^Parent:' "$T/info.out" || fail "compacted $c still names a parent: $(grep '^Parent' "$T/info.out")"
done
info "$T/compact/tip.crimg"
[ "$INFO_SAVED" -ge "$tip_saved" ] && [ "$INFO_SAVED" -le "$total" ] ||
  fail "the compacted tip holds $INFO_SAVED bytes; expected between the tip's $tip_saved and the chain's $total"
log "compacted tip: $(mib "$INFO_SAVED") MiB (tip alone $(mib "$tip_saved") MiB, chain $(mib "$total") MiB)"

# 3. without any parent
rm -rf -- "$chain_dir"
restore_fg ctip "$T/compact/tip.crimg"
cmp -s "$T/ctip.out" "$T/tip.out" || { show_diff "$T/tip.out" "$T/ctip.out"; fail "the compacted tip restores differently from the chain it came from"; }
restored_ok ctip "${P[$((N - 1))]}"
check_files "$T/run.file" "$T/ref.file"
restore_fg clink2 "$T/compact/link2.crimg"
restored_ok clink2 "${P[1]}"
check_files "$T/run.file" "$T/ref.file"
log "compacted images restore identically with every link of their chain deleted"

# 4. a compacted image as the parent of a new chain
rm -f -- "$T/gate"
start_restore cgen1 "$T/compact/tip.crimg"
rpid=$PID
# The tip was taken after step P_n was printed, but possibly much later (under load the
# program runs on until the agent parks it): when its restore printed step STEPS-1
# itself, wait for that line; when the image was taken at the gate already (the restore
# began with the last step), the restored process sits at the gate from the start.
if [ "$(first_step "$T/tip.out")" -le $((STEPS - 1)) ]; then
  wait_step "$T/cgen1.out" $((STEPS - 1)) "$rpid"
fi
ckpt cinc "$rpid" "$T/snap" --incremental
cinc=$IMAGE
expect_chain "$cinc" 2
[ "$INFO_PARENT" = "$T/compact/tip.crimg" ] || fail "the incremental image of the restored process names parent '$INFO_PARENT', expected $T/compact/tip.crimg"
kill_restored "$rpid"
touch "$T/gate"
restore_fg cgen2 "$cinc"
restored_ok cgen2 $((STEPS - 1))
check_files "$T/run.file" "$T/ref.file"
log "an incremental image on top of a compacted one restores correctly"
