#!/usr/bin/env bash
# A chain of incremental images restores like a full image (issue 3: "chains of five with
# equivalence").
#
#   incremental_chain.sh BIN_DIR APP [--points "4 10 16 22 28"] [--older 3]
#                        [--backend uffd|hash|auto] [-- APP_ARGS...]
#
# APP is stateful_app (state everywhere: heap churn, brk and mmap'd malloc chunks,
# .bss/.data, a deep stack, libc state, files, threads with --threads).
#  1. The uninterrupted run (no preload) gives A, FA (files), its exit code.
#  2. Under ompi-cr-run (OMPI_CR_DIRTY_TRACKING=BACKEND unless auto): a full image after
#     step P1, then an incremental image after each of P2..Pn (the process continues
#     between them). Each image i: ompi-cr-info accepts it and reports a chain of i images,
#     the backend, its parent = image i-1 (named relative: same directory). kill -9
#     after the last image. (Sizes are only logged here: stateful_app is not gated
#     between images, and under load a checkpoint requested after step k can land many
#     steps later -- seen: 15 -- when its heap and .bss stripes (16 each) have all been
#     rewritten, so an incremental image as big as a full one is then correct.
#     incremental_fraction.sh checks sizes with a gated program.)
#  3. Restore the tip (gate open): the restored output R is a non-empty tail of A starting
#     after Pn, the killed run's output starts with A minus R (so stitched output = A),
#     exit code and files equal the uninterrupted run's.
#  4. In a separate run, restore the OLDER-th image (an older link, e.g. the 3rd): the
#     same checks, after P_OLDER (the program's files are rewritten from its offsets).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/inc_lib.sh"
ocr_init "$1" "$2"
shift 2

POINTS="4 10 16 22 28"
OLDER=3
BACKEND=auto
while [ $# -gt 0 ]; do
  case $1 in
    --points) POINTS=$2; shift 2 ;;
    --older) OLDER=$2; shift 2 ;;
    --backend) BACKEND=$2; shift 2 ;;
    --) shift; break ;;
    *) fail "usage: incremental_chain.sh BIN_DIR APP [--points \"K...\"] [--older I] [--backend B] [-- APP_ARGS...]" ;;
  esac
done
OCR_TEST_NAME="incremental_chain/$BACKEND"
APP_ARGS=("$@")
[ ${#APP_ARGS[@]} -gt 0 ] || APP_ARGS=(--steps 40 --heap-mb 64 --step-ms 40 --exit-code 8)
if [ "$BACKEND" != auto ]; then export OMPI_CR_DIRTY_TRACKING=$BACKEND; fi
case $BACKEND in auto | uffd) WANT_BACKEND=userfaultfd-wp ;; hash) WANT_BACKEND=page-hash ;; *) WANT_BACKEND=$BACKEND ;; esac
read -r -a P <<<"$POINTS"
N=${#P[@]}
[ "$N" -ge 2 ] || fail "need at least two points"
[ "$OLDER" -ge 1 ] && [ "$OLDER" -le "$N" ] || fail "--older must be in 1..$N"
STEPS=$(app_steps "${APP_ARGS[@]}")
prev=0
for k in "${P[@]}"; do
  [ "$k" -gt "$prev" ] && [ "$k" -lt "$STEPS" ] || fail "points must increase and stay below $STEPS"
  prev=$k
done

run_reference ref "${APP_ARGS[@]}"

start_cr run "$T/run.file" "$T/gate" "${APP_ARGS[@]}"
pid=$PID
IMGS=()
for i in $(seq 1 "$N"); do
  k=${P[$((i - 1))]}
  wait_step "$T/run.out" "$k" "$pid"
  if [ "$i" -eq 1 ]; then kind=--full; else kind=--incremental; fi
  ckpt "ckpt$i" "$pid" "$T/snap" $kind
  IMGS+=("$IMAGE")
  SIZES[i]=$SAVED
  expect_chain "$IMAGE" "$i"
  if [ "$i" -gt 1 ]; then
    [ "$INFO_BACKEND" = "$WANT_BACKEND" ] || fail "image $i: dirty pages found by '$INFO_BACKEND', expected '$WANT_BACKEND'"
    want_parent=${IMGS[$((i - 2))]}
    [ "$INFO_PARENT" = "${want_parent##*/}" ] || fail "image $i names parent '$INFO_PARENT', expected ${want_parent##*/}"
  fi
done
kill9 "$pid"
log "chain: $(for i in $(seq 1 "$N"); do printf '%s=%sMiB ' "${IMGS[$((i - 1))]##*/}" "$(mib "${SIZES[i]}")"; done)"

touch "$T/gate"
restore_fg tip "${IMGS[$((N - 1))]}"
restored_ok tip "${P[$((N - 1))]}"
check_prefix "$T/ref.out" "$TAIL_START" "$T/run.out"
check_files "$T/run.file" "$T/ref.file"
log "tip of the chain of $N: killed run + restored run == uninterrupted run; files identical"

restore_fg older "${IMGS[$((OLDER - 1))]}"
restored_ok older "${P[$((OLDER - 1))]}"
check_files "$T/run.file" "$T/ref.file"
log "link $OLDER of $N (${IMGS[$((OLDER - 1))]##*/}): restored output is a tail of the uninterrupted run; files identical"
