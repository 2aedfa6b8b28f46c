#!/usr/bin/env bash
# Memory hints end to end (include/ompi_cr/hints.h, docs/hints.md) with hints_app.c:
#
#   hints.sh BIN_DIR HINTS_APP              the checks 1-5 below
#   hints.sh BIN_DIR HINTS_APP cs-timeout   the critical-section timeout (see cs_timeout)
#
# 1. hints_app runs under ompi-cr-run; a thread holds a critical section. ompi-checkpoint
#    -v is started; the CHECKPOINT callbacks print; the checkpoint must still be pending
#    (waiting for the section); the test opens the section's gate; the checkpoint then
#    completes, and "cs closing" precedes the CONTINUE callbacks in the output.
# 2. The image's skip counters (ompi-checkpoint -v and ompi-cr-info) are exactly the
#    hinted and receive-buffer bytes hints_app registered: 29 and 23 pages.
# 3. hints_app calls ompi_cr_checkpoint(): 0 in the original, after CHECKPOINT and
#    CONTINUE callbacks; every page of the original still holds its pattern.
# 4. kill -9; restore of the explicit image: RESTART callbacks (reverse order),
#    ompi_cr_checkpoint() returns 1, exactly the excluded whole pages read zero and every
#    other page (guards, partial pages, included pages, message data) its pattern.
# 5. Restore of the first image: RESTART callbacks, the section was closed in the image,
#    the same page maps, and a new explicit checkpoint in the restored process returns 0.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ocr_init "$1" "$2"
MODE=${3:-full}

P=4096
WANT_HINTED=$((29 * P))
WANT_RECV=$((23 * P))
# Page maps of a restored process (P = pattern, Z = zero), derived from the hints in
# hints_app.c's setup_hints, not from the program's output.
declare -A WANT_MAP=(
  [A]=PPZZZZPPPPPPPPPP [B]=PPZZZPPP [C]=PZZP [D]=ZZZZPZZZZZPP [E]=PZZZZZZZPP [G]=PPPP
  [H]=PP [F]=ZZZZZZZZPZZPPZZZ [I]=ZZZZ [J]=PPPP [K]=PPPP [L]=ZZZPZZZZ [M]=ZPZZ
  [guards]=PPPPPPPPPPPPPP
)

# wait_line FILE REGEX PID : wait until FILE has a line matching REGEX
wait_line() {
  local file=$1 re=$2 pid=$3 waited=0
  while ! grep -Eq -m1 -- "$re" "$file" 2>/dev/null; do
    if ! proc_alive "$pid"; then
      grep -Eq -m1 -- "$re" "$file" 2>/dev/null && return 0
      fail "pid $pid ended before printing /$re/ in ${file##*/}: $(tail -n 3 "$file" 2>/dev/null)"
    fi
    sleep 0.02
    waited=$((waited + 1))
    [ $waited -lt $((OCR_WAIT_LIMIT * 50)) ] || fail "no /$re/ in ${file##*/} after ${OCR_WAIT_LIMIT}s (hang?)"
  done
}

# line_no FILE EXACT_LINE [NTH] : line number of the NTH (default 1st) occurrence, or fail
line_no() {
  local n
  n=$(grep -n -x -F -- "$2" "$1" | sed -n "${3:-1}p" | cut -d: -f1)
  [ -n "$n" ] || fail "${1##*/} has no line '$2'${3:+ (occurrence $3)}"
  echo "$n"
}

# check_callbacks FILE EXPECTED... : the "callback ..." lines of FILE, in order
check_callbacks() {
  local file=$1 got want
  shift
  got=$(grep '^callback ' "$file" | tr '\n' '|' || true)
  want=$(printf '%s|' "$@")
  [ "$got" = "$want" ] || fail "${file##*/}: callbacks printed '$got', expected '$want'"
}

# check_maps FILE TAG MODE : the page maps printed under TAG; MODE all-P or restored
check_maps() {
  local file=$1 tag=$2 mode=$3 name got want
  for name in "${!WANT_MAP[@]}"; do
    got=$(grep -m1 "^$tag map $name " "$file" | awk '{ print $4 }')
    [ -n "$got" ] || fail "${file##*/}: no '$tag map $name' line"
    want=${WANT_MAP[$name]}
    [ "$mode" = restored ] || want=${want//Z/P}
    [ "$got" = "$want" ] || fail "${file##*/}: $tag pages of region $name are '$got', expected '$want' (P pattern, Z zero, X damaged)"
  done
}

# skipped_bytes FILE REASON : the bytes of "  skipped REASON: N bytes" (ompi-checkpoint -v)
skipped_bytes() {
  awk -v r="$2" '$1 == "skipped" && $2 == r":" && $4 == "bytes" { print $3; exit }' "$1"
}

# info_bytes FILE REASON : the bytes of REASON in ompi-cr-info's "Skipped:" table
info_bytes() {
  awk -v r="$2" '$1 == r && $3 == "bytes" { print $2; exit }' "$1"
}

check_counters() {
  local what=$1 hinted=$2 recv=$3
  [ "$hinted" = "$WANT_HINTED" ] || fail "$what: skipped hinted = '${hinted}' bytes, expected $WANT_HINTED (29 pages)"
  [ "$recv" = "$WANT_RECV" ] || fail "$what: skipped receive-buffer = '${recv}' bytes, expected $WANT_RECV (23 pages)"
}

# cs_timeout: a checkpoint that waits for a critical section longer than the runtime's
# timeout (OMPI_CR_CS_TIMEOUT_MS) fails with a one-line error naming the critical section,
# never hangs, and leaves the process running: CONTINUE callbacks follow the CHECKPOINT
# ones, ompi_cr_checkpoint() returns OMPI_CR_ERR_TIMEOUT (-5), and once the section is
# closed the next checkpoint succeeds.
cs_timeout() {
  local pid cpid rc=0
  OMPI_CR_CS_TIMEOUT_MS=300 "$OCR_BIN/ompi-cr-run" --snapshot-dir "$T/snap" -- "$OCR_APP" \
    --gate-dir "$T" --timeout-mode >"$T/orig.out" 2>"$T/orig.err" </dev/null &
  pid=$!
  OCR_PIDS+=("$pid")
  wait_line "$T/orig.out" '^(cs open|FAILED)' "$pid"
  grep -q '^FAILED' "$T/orig.out" && fail "hints_app: $(grep '^FAILED' "$T/orig.out")"
  timeout -k 10 "$OCR_TOOL_TIMEOUT" "$OCR_BIN/ompi-checkpoint" --pid "$pid" --snapshot-dir "$T/snap" \
    >"$T/ckpt1.out" 2>"$T/ckpt1.err" </dev/null || rc=$?
  expect_clean_failure "ompi-checkpoint with a critical section open past the timeout" ckpt1 "$rc" \
    'critical section' ""
  proc_alive "$pid" || fail "the process did not survive the failed checkpoint"
  wait_line "$T/orig.out" '^callback first CONTINUE$' "$pid"
  check_callbacks "$T/orig.out" "callback first CHECKPOINT" "callback second CHECKPOINT" \
    "callback second CONTINUE" "callback first CONTINUE"
  # The explicit checkpoint times out the same way.
  touch "$T/gate.main"
  wait_line "$T/orig.out" '^explicit checkpoint returned' "$pid"
  grep -qx "explicit checkpoint returned -5" "$T/orig.out" ||
    fail "ompi_cr_checkpoint() with a section open past the timeout: '$(grep '^explicit' "$T/orig.out")', expected -5 (OMPI_CR_ERR_TIMEOUT)"
  # Close the section: checkpoints work again.
  touch "$T/gate.cs"
  wait_line "$T/orig.out" '^cs closing$' "$pid"
  touch "$T/gate.retry"
  wait_line "$T/orig.out" '^explicit checkpoint returned [^-]' "$pid"
  grep -qx "explicit checkpoint returned 0" "$T/orig.out" ||
    fail "ompi_cr_checkpoint() after the section closed: '$(grep '^explicit' "$T/orig.out" | tail -n 1)', expected 0"
  checkpoint ckpt2 "$pid"
  touch "$T/gate.end"
  wait_exit "$pid"
  [ "$RC" -eq 0 ] || fail "hints_app exited with $RC: $(head -c 1000 "$T/orig.err")"
  grep -qx 'done' "$T/orig.out" || fail "hints_app did not finish"
  log "critical-section timeout: clean error, process unharmed, later checkpoints fine"
}

if [ "$MODE" = cs-timeout ]; then
  cs_timeout
  exit 0
fi
[ "$MODE" = full ] || fail "unknown mode '$MODE'"

# ------------------------------------------------------------------- original ----
"$OCR_BIN/ompi-cr-run" --snapshot-dir "$T/snap" -- "$OCR_APP" --gate-dir "$T" \
  >"$T/orig.out" 2>"$T/orig.err" </dev/null &
pid=$!
OCR_PIDS+=("$pid")
log "started hints_app under ompi-cr-run: pid $pid"
wait_line "$T/orig.out" '^(setup ok|FAILED)' "$pid"
grep -q '^FAILED' "$T/orig.out" && fail "hints_app: $(grep '^FAILED' "$T/orig.out")"
grep -qx 'active 1' "$T/orig.out" || fail "ompi_cr_active() under ompi-cr-run: $(head -n 1 "$T/orig.out"), expected 'active 1'"
grep -qx 'errors ok' "$T/orig.out" || fail "hints_app's error checks did not pass"

# 1. A checkpoint while a critical section is open.
wait_line "$T/orig.out" '^cs open$' "$pid"
timeout -k 10 "$OCR_TOOL_TIMEOUT" "$OCR_BIN/ompi-checkpoint" --pid "$pid" --snapshot-dir "$T/snap" -v \
  >"$T/ckpt1.out" 2>"$T/ckpt1.err" </dev/null &
cpid=$!
OCR_PIDS+=("$cpid")
wait_line "$T/orig.out" '^callback second CHECKPOINT$' "$pid"
# Only gives a checkpoint that wrongly ignores the section the time to finish; a correct
# one cannot finish before the gate opens, however long this is.
sleep 0.5
proc_alive "$cpid" || fail "ompi-checkpoint finished while a critical section was open: $(cat "$T/ckpt1.out" "$T/ckpt1.err")"
! grep -q 'CONTINUE' "$T/orig.out" || fail "CONTINUE callbacks ran while the critical section was open"
touch "$T/gate.cs"
wait_exit "$cpid"
[ "$RC" -eq 0 ] || fail "ompi-checkpoint -v exited with $RC: $(head -c 2000 "$T/ckpt1.err")"
last=$(tail -n 1 "$T/ckpt1.out")
case $last in
  "Image: /"*) img1=${last#Image: } ;;
  *) fail "ompi-checkpoint: last line of stdout is '$last', expected 'Image: <path>'" ;;
esac
[ -e "$img1" ] || fail "image $img1 does not exist"
log "checkpoint with an open critical section: $img1"
wait_line "$T/orig.out" '^callback first CONTINUE$' "$pid"
[ "$(line_no "$T/orig.out" 'cs closing')" -lt "$(line_no "$T/orig.out" 'callback second CONTINUE')" ] ||
  fail "the checkpoint completed before the critical section closed: $(grep -E '^(cs|callback)' "$T/orig.out" | tr '\n' '|')"

# 2. Skip counters.
check_counters "ompi-checkpoint -v" "$(skipped_bytes "$T/ckpt1.out" hinted)" "$(skipped_bytes "$T/ckpt1.out" receive-buffer)"
info_ok "$img1"
check_counters "ompi-cr-info ${img1##*/}" "$(info_bytes "$T/info.out" hinted)" "$(info_bytes "$T/info.out" receive-buffer)"
log "image 1 skipped exactly $WANT_HINTED hinted and $WANT_RECV receive-buffer bytes"

# 3. The explicit checkpoint in the original.
touch "$T/gate.main"
wait_line "$T/orig.out" '^check2 map guards ' "$pid"
grep -qx 'cs_state 2' "$T/orig.out" || fail "original: $(grep '^cs_state' "$T/orig.out"), expected cs_state 2"
grep -qx 'explicit checkpoint returned 0' "$T/orig.out" ||
  fail "ompi_cr_checkpoint() in the original: '$(grep '^explicit' "$T/orig.out")', expected 0"
check_callbacks "$T/orig.out" "callback first CHECKPOINT" "callback second CHECKPOINT" \
  "callback second CONTINUE" "callback first CONTINUE" "callback first CHECKPOINT" \
  "callback second CHECKPOINT" "callback second CONTINUE" "callback first CONTINUE"
[ "$(line_no "$T/orig.out" 'callback first CONTINUE' 2)" -lt "$(line_no "$T/orig.out" 'explicit checkpoint returned 0')" ] ||
  fail "ompi_cr_checkpoint() returned before the CONTINUE callbacks ran"
check_maps "$T/orig.out" check1 all-P
check_maps "$T/orig.out" check2 all-P
mapfile -t imgs < <(find "$T/snap" "$T/snap-default" -name '*.crimg' -type f 2>/dev/null | sort)
img2=""
for i in "${imgs[@]}"; do [ "$i" = "$img1" ] || img2=$i; done
if [ ${#imgs[@]} -ne 2 ] || [ -z "$img2" ]; then
  fail "expected 2 images after the explicit checkpoint, found: ${imgs[*]:-none}"
fi
info_ok "$img2"
check_counters "ompi-cr-info ${img2##*/}" "$(info_bytes "$T/info.out" hinted)" "$(info_bytes "$T/info.out" receive-buffer)"
log "explicit checkpoint returned 0 after its callbacks: $img2"
kill9 "$pid"

# 4. Restore the explicit checkpoint's image.
touch "$T/gate.end"
restore_fg restore2 "$img2"
[ "$RC" -eq 0 ] || fail "restore of $img2 exited with $RC: $(head -c 2000 "$T/restore2.err")"
grep -q '^FAILED' "$T/restore2.out" && fail "restored hints_app: $(grep '^FAILED' "$T/restore2.out")"
grep -qx 'explicit checkpoint returned 1' "$T/restore2.out" ||
  fail "ompi_cr_checkpoint() in the restored process: '$(grep '^explicit' "$T/restore2.out")', expected 1"
check_callbacks "$T/restore2.out" "callback second RESTART" "callback first RESTART"
[ "$(line_no "$T/restore2.out" 'callback first RESTART')" -lt "$(line_no "$T/restore2.out" 'explicit checkpoint returned 1')" ] ||
  fail "ompi_cr_checkpoint() returned in the restored process before the RESTART callbacks ran"
check_maps "$T/restore2.out" check2 restored
! grep -Eq '^(setup ok|cs open|cs closing|check1 )' "$T/restore2.out" ||
  fail "the restored process repeated work done before its checkpoint: $(head -n 3 "$T/restore2.out")"
grep -qx 'done' "$T/restore2.out" || fail "the restored process did not finish"
log "restored explicit image: RESTART callbacks, returned 1, excluded pages zero, all else intact"

# 5. Restore the first image (taken while main waited for gate.main).
restore_fg restore1 "$img1"
[ "$RC" -eq 0 ] || fail "restore of $img1 exited with $RC: $(head -c 2000 "$T/restore1.err")"
grep -q '^FAILED' "$T/restore1.out" && fail "restored hints_app: $(grep '^FAILED' "$T/restore1.out")"
! grep -Eq '^cs (open|closing)$' "$T/restore1.out" ||
  fail "the first image was taken while the critical section was open (the restored thread closed it)"
grep -qx 'cs_state 2' "$T/restore1.out" || fail "restore1: $(grep '^cs_state' "$T/restore1.out"), expected cs_state 2"
check_callbacks "$T/restore1.out" "callback second RESTART" "callback first RESTART" \
  "callback first CHECKPOINT" "callback second CHECKPOINT" "callback second CONTINUE" "callback first CONTINUE"
grep -qx 'explicit checkpoint returned 0' "$T/restore1.out" ||
  fail "ompi_cr_checkpoint() in a restored process taking a new checkpoint: '$(grep '^explicit' "$T/restore1.out")', expected 0"
# Its request came while the restore was still finishing (slow RESTART callback): it must
# wait for a checkpoint of its own, not take the end of the restore for it.
[ "$(line_no "$T/restore1.out" 'callback first CONTINUE')" -lt "$(line_no "$T/restore1.out" 'explicit checkpoint returned 0')" ] ||
  fail "ompi_cr_checkpoint() in the restored process returned before its own checkpoint ran: $(grep -E '^(callback|explicit|done)' "$T/restore1.out" | tr '\n' '|')"
check_maps "$T/restore1.out" check1 restored
check_maps "$T/restore1.out" check2 restored
grep -qx 'done' "$T/restore1.out" || fail "the restored process did not finish"
log "restored first image: section closed in the image, RESTART callbacks, same page maps"
