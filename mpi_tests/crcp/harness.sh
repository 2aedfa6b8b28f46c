#!/usr/bin/env bash
# Coordinated checkpoint of whole MPI jobs: "checkpoint and continue" equivalence and
# bad input (mpi_tests/crcp.cmake registers program x scenario as ctests).
#
#   harness.sh SCENARIO PROGRAM NP BIN_DIR COMPONENT_DIR PARAM_SET_DIR PROG_DIR MPIRUN [-- ARGS...]
#
#   SCENARIO  am          mpirun --am ft-enable-cr, no checkpoint: output = reference
#             ckpt        one ompi-checkpoint at 40% of the output
#             multi       checkpoints at 15%, 50%, 50% again at once, 80%
#             term        ompi-checkpoint --term at 40%: snapshot complete with term=1, the
#                         job ends, its output is a prefix (whole lines) of the reference
#             badpid      ompi-checkpoint of a sleep process, of a dead PID, of "abc"
#             noam        ompi-checkpoint of an mpirun started without --am
#             unwritable  the job's OMPI_CR_SNAPSHOT_DIR is /dev/null/x, then an immutable
#                         directory: the checkpoint fails, the job goes on unharmed
#   PROGRAM   a program of mpi_tests/programs (in PROG_DIR), run with NP ranks and ARGS
#   BIN_DIR   the build tree's bin/ (ompi-checkpoint, ompi-cr-info)
#   COMPONENT_DIR, PARAM_SET_DIR  the build tree's mca_shmem_ompicr.so and ft-enable-cr
#   MPIRUN    Open MPI's mpirun
#
# Every scenario first runs the program with plain mpirun (the reference) and in the end
# compares the job's whole stdout with it byte for byte. A checkpoint must print
# "Snapshot Ref.: <seq> <dir>" with dir = $T/snap/ompi_global_snapshot_<mpirun pid>.ckpt
# and leave metadata (global_snapshot_meta.h5) that h5dump reads: state complete, one row
# per rank. For eager_flood at least one snapshot must have drained messages.
# Environment: OCR_WAIT_LIMIT (hang detection, s), OCR_TOOL_TIMEOUT, OCR_KEEP_TMP=1.
set -Eeuo pipefail

[ $# -ge 8 ] || { echo "usage: $0 SCENARIO PROGRAM NP BIN_DIR COMPONENT_DIR PARAM_SET_DIR PROG_DIR MPIRUN [-- ARGS...]" >&2; exit 2; }
SCENARIO=$1 PROGRAM=$2 NP=$3
shift 3
# shellcheck source=mpi_tests/crcp/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CRCP_TEST="crcp $PROGRAM $SCENARIO"
crcp_init "$1" "$2" "$3" "$4" "$5"
shift 5
[ $# -gt 0 ] && [ "$1" = -- ] && shift
ARGS=("$@")
[ -x "$PROGS/$PROGRAM" ] || fail "$PROGS/$PROGRAM missing (not built?)"

# ---------------------------------------------------------------- phases ----
# Each phase is one function so that later steps (ompi-restart of the last snapshot,
# comparing the restarted job's output with the reference's tail) slot in between.

# phase_reference: plain mpirun, no ompi-cr at all -> $T/ref.out; REF_LINES
phase_reference() {
  local rc=0
  timeout -k 10 "$OCR_WAIT_LIMIT" "$MPIRUN" --oversubscribe -np "$NP" "$PROGS/$PROGRAM" "${ARGS[@]}" \
    >"$T/ref.out" 2>"$T/ref.err" </dev/null || rc=$?
  [ $rc -eq 0 ] || fail "reference run (plain mpirun) exited with $rc"
  [ "$(tail -n 1 "$T/ref.out")" = "$PROGRAM: done" ] || fail "reference run: last line is not '$PROGRAM: done'"
  REF_LINES=$(grep -c '' "$T/ref.out")
  [ "$REF_LINES" -ge 4 ] || fail "reference run printed only $REF_LINES lines"
  log "reference: $REF_LINES lines"
}

# line_at PCT: the output line after which a checkpoint at PCT% is requested
# (at least 2, at most the last line before the gate)
line_at() {
  local l=$((REF_LINES * $1 / 100))
  [ $l -ge 2 ] || l=2
  [ $l -le $((REF_LINES - 1)) ] || l=$((REF_LINES - 1))
  echo $l
}

# under_runtime NAME: mpirun was re-executed for C/R and its ranks map libompi-cr.so
under_runtime() {
  local name=$1 pid kid n=0
  pid=$(cat "$T/$name.pid")
  tr '\0' '\n' <"/proc/$pid/environ" | grep -qx "OMPI_CR_MPIRUN_PID=$pid" ||
    fail "$name: mpirun $pid was not re-executed for C/R (no OMPI_CR_MPIRUN_PID in its environment)"
  for kid in $(pgrep -P "$pid" || true); do
    if grep -Eq 'libompi-cr(-mpi)?\.so' "/proc/$kid/maps" 2>/dev/null; then n=$((n + 1)); fi
  done
  [ $n -eq "$NP" ] || fail "$name: $n of $NP ranks (children of mpirun $pid) map libompi-cr.so"
}

# phase_job NAME MODE [VAR=VALUE...]: start the job; wait for its first line
phase_job() {
  local name=$1 mode=$2
  shift 2
  start_job "$name" "$mode" "$PROGRAM" "$NP" "$@" -- "${ARGS[@]}"
  wait_lines "$name" 1
  [ "$mode" != am ] || under_runtime "$name"
}

# checkpoint_once NAME I [--term]: ompi-checkpoint [--term] <mpirun pid> must succeed;
# records the seq and checks the snapshot at once (while the job waits at its gate at
# the latest; with --term the job must end instead)
SEQS=()
checkpoint_once() {
  local name=$1 i=$2 term=${3:-} pid ref seq dir want
  pid=$(cat "$T/$name.pid")
  local t0=$EPOCHREALTIME
  run_checkpoint "ckpt$i" ${term:+"$term"} "$pid"
  local took
  took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
  if [ $CK_RC -ne 0 ]; then
    show "$T/ckpt$i.out"
    fail "$name: ompi-checkpoint $pid (checkpoint $i, after line $(grep -c '' "$T/$name.out") of $REF_LINES) exited with $CK_RC: $(head -c 2000 "$T/ckpt$i.err")"
  fi
  ref=$(grep -E '^Snapshot Ref\.: [0-9]+ /' "$T/ckpt$i.out" || true)
  [ "$(printf '%s' "$ref" | grep -c .)" -eq 1 ] ||
    fail "$name: checkpoint $i: expected one line 'Snapshot Ref.: <seq> <absolute dir>', got: $(head -c 1000 "$T/ckpt$i.out")"
  seq=$(awk '{ print $3 }' <<<"$ref")
  dir=$(cut -d' ' -f4- <<<"$ref")
  want=$T/snap/ompi_global_snapshot_$pid.ckpt
  [ "$dir" = "$want" ] || [ "$(realpath -m "$dir")" = "$(realpath -m "$want")" ] ||
    fail "$name: checkpoint $i: snapshot dir '$dir', expected '$want'"
  if [ ${#SEQS[@]} -gt 0 ]; then
    [ "$seq" -gt "${SEQS[-1]}" ] || fail "$name: checkpoint $i: seq $seq after seq ${SEQS[-1]}"
  fi
  SEQS+=("$seq")
  SNAP_DIR=$dir
  log "checkpoint $i${term:+ $term} after line $(grep -c '' "$T/$name.out") of $REF_LINES: seq $seq (ompi-checkpoint took ${took}s)"
  if [ -z "$term" ]; then
    proc_alive "$pid" || fail "$name: mpirun $pid ended after checkpoint $i (the job must continue)"
    check_snapshot "$seq" "$dir" "$NP" "$pid"
  fi
}

# phase_checkpoints NAME PCT...: one checkpoint per percentage of the reference output;
# a repeated percentage means "again, at once"
phase_checkpoints() {
  local name=$1 pct i=0
  shift
  for pct in "$@"; do
    i=$((i + 1))
    wait_lines "$name" "$(line_at "$pct")"
    checkpoint_once "$name" $i
  done
}

# phase_snapshots: all snapshots are still listed complete at the end; ompi-cr-info
# reads the global snapshot; eager_flood drained something
phase_snapshots() {
  local seq
  DRAINED_TOTAL=0
  for seq in "${SEQS[@]}"; do check_snapshot "$seq" "$SNAP_DIR" "$NP" "$(cat "$T/job.pid")"; done
  if [ -x "$BIN/ompi-cr-info" ]; then
    local rc=0
    timeout -k 10 120 "$BIN/ompi-cr-info" "$SNAP_DIR" >"$T/info.out" 2>"$T/info.err" </dev/null || rc=$?
    [ $rc -eq 0 ] || fail "ompi-cr-info $SNAP_DIR exited with $rc: $(head -c 1000 "$T/info.err")"
    [ -s "$T/info.out" ] || fail "ompi-cr-info $SNAP_DIR printed nothing"
  fi
  if [ "$PROGRAM" = eager_flood ]; then
    [ "$DRAINED_TOTAL" -gt 0 ] || fail "eager_flood: no snapshot drained any message (drained_messages is 0 in all ${#SEQS[@]})"
  fi
  log "${#SEQS[@]} snapshot(s) in $SNAP_DIR, $DRAINED_TOTAL drained messages in all"
}

# phase_end NAME: open the gate; the job ends normally with the reference's output
phase_end() {
  finish_job "$1"
  same_as_reference "$1"
  log "$1: output identical to the uninterrupted run ($(grep -c '' "$T/$1.out") lines)"
}

# ------------------------------------------------------------- scenarios ----
phase_reference
case "$SCENARIO" in
  am)
    phase_job job am OMPI_CR_SNAPSHOT_DIR="$T/snap"
    phase_end job
    ;;
  ckpt)
    phase_job job am OMPI_CR_SNAPSHOT_DIR="$T/snap"
    phase_checkpoints job 40
    phase_end job
    phase_snapshots
    ;;
  multi)
    phase_job job am OMPI_CR_SNAPSHOT_DIR="$T/snap"
    phase_checkpoints job 15 50 50 80
    phase_end job
    phase_snapshots
    ;;
  badpid)
    sleep 600 >/dev/null 2>&1 &
    sp=$!
    CRCP_PIDS+=("$sp")
    run_checkpoint notmpirun "$sp"
    expect_refusal "a sleep process (pid $sp)" notmpirun
    proc_alive "$sp" || fail "the sleep process $sp died: ompi-checkpoint must not signal a process that is not a C/R mpirun"
    true </dev/null &
    dp=$!
    wait "$dp" || true
    if proc_alive "$dp"; then fail "pid $dp is alive again (reused); rerun"; fi
    run_checkpoint deadpid "$dp"
    expect_refusal "a dead pid ($dp)" deadpid
    run_checkpoint garbage abc
    if [ "$CK_RC" -eq 0 ] || [ "$CK_RC" -ge 128 ]; then fail "ompi-checkpoint abc exited with $CK_RC"; fi
    log "ompi-checkpoint abc: exit $CK_RC"
    # a real C/R job is not disturbed by any of it
    phase_job job am OMPI_CR_SNAPSHOT_DIR="$T/snap"
    phase_end job
    ;;
  term)
    phase_job job am OMPI_CR_SNAPSHOT_DIR="$T/snap"
    wait_lines job "$(line_at 40)"
    checkpoint_once job 1 --term
    # the job ends by itself (its gate stays closed)
    waited=0
    while proc_alive "$(cat "$T/job.pid")"; do
      sleep 0.05
      waited=$((waited + 1))
      [ $waited -lt $((OCR_WAIT_LIMIT * 20)) ] || fail "mpirun still running ${OCR_WAIT_LIMIT}s after ompi-checkpoint --term"
    done
    rc=0
    wait "$(cat "$T/job.pid")" || rc=$?
    n=$(stat -c %s "$T/job.out")
    cmp -s -n "$n" "$T/ref.out" "$T/job.out" || fail "the output of the job ended by --term is not a prefix of the reference"
    [ "$n" -eq 0 ] || [ "$(tail -c 1 "$T/job.out" | od -An -tx1 | tr -d ' ')" = 0a ] || fail "the job ended by --term left a partial line"
    [ "$(h5_attr "$SNAP_DIR/global_snapshot_meta.h5" "/snapshots/${SEQS[0]}" term)" = 1 ] ||
      fail "snapshot ${SEQS[0]}: attribute term is not 1"
    log "the job ended after the checkpoint (mpirun exit code $rc), output: the first $(grep -c '' "$T/job.out") of $REF_LINES lines"
    phase_snapshots
    ;;
  noam)
    phase_job job plain OMPI_CR_SNAPSHOT_DIR="$T/snap"
    wait_lines job "$(line_at 40)"
    run_checkpoint noam "$(cat "$T/job.pid")"
    expect_refusal "mpirun without --am ft-enable-cr" noam
    proc_alive "$(cat "$T/job.pid")" || fail "the job without --am ended after ompi-checkpoint"
    phase_end job
    ;;
  unwritable)
    # 1: a path under a regular file
    phase_job job1 am OMPI_CR_SNAPSHOT_DIR=/dev/null/x
    wait_lines job1 "$(line_at 40)"
    run_checkpoint ro1 "$(cat "$T/job1.pid")"
    expect_refusal "snapshot dir /dev/null/x" ro1
    proc_alive "$(cat "$T/job1.pid")" || fail "the job ended after a failed checkpoint"
    phase_end job1
    # 2: an immutable directory (as root, permissions alone do not stop writes)
    mkdir -p "$T/ro"
    if chattr +i "$T/ro" 2>/dev/null; then
      CRCP_IMMUTABLE+=("$T/ro")
      phase_job job2 am OMPI_CR_SNAPSHOT_DIR="$T/ro"
      wait_lines job2 "$(line_at 40)"
      run_checkpoint ro2 "$(cat "$T/job2.pid")"
      expect_refusal "immutable snapshot dir" ro2
      proc_alive "$(cat "$T/job2.pid")" || fail "the job ended after a failed checkpoint"
      [ -z "$(ls -A "$T/ro")" ] || fail "something was created in the immutable dir: $(ls -A "$T/ro")"
      phase_end job2
    else
      log "chattr +i not possible here (not root, or the file system does not support it): immutable-dir case not run"
    fi
    ;;
  *)
    echo "unknown scenario $SCENARIO" >&2
    exit 2
    ;;
esac
