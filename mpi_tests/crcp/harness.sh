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
#             restart     checkpoint at 40%, kill -9 of the whole job the moment
#                         ompi-checkpoint returns, ompi-restart of the snapshot
#             restart_multi  checkpoints at 30% and 60%, kill, restart of the newer; then
#                         a second restart of the older one (-s)
#             generations three restarted generations: each restarted job (ompi-restart's
#                         PID is its mpirun's) is checkpointed and killed, but the last
#             restart_term   ompi-checkpoint --term at 40%, then ompi-restart
#             restart_incremental  full checkpoint, two --incremental ones, kill, restart
#                         of the newest (kind incremental in the metadata); then the
#                         restarted job: --incremental (refused, or full: a new global
#                         snapshot directory), full if refused, --incremental, kill,
#                         restart of that incremental snapshot
#             restart_inflight  checkpoints until one drained messages, kill, restart
#   PROGRAM   a program of mpi_tests/programs (in PROG_DIR), run with NP ranks and ARGS
#   BIN_DIR   the build tree's bin/ (ompi-checkpoint, ompi-cr-info)
#   COMPONENT_DIR, PARAM_SET_DIR  the build tree's mca_shmem_ompicr.so and ft-enable-cr
#   MPIRUN    Open MPI's mpirun
#
# Every scenario first runs the program with plain mpirun (the reference) and in the end
# compares the job's whole stdout with it byte for byte. A checkpoint must print
# "Snapshot Ref.: <seq> <dir>" with dir = $T/snap/ompi_global_snapshot_<mpirun pid>.ckpt
# and leave metadata (global_snapshot_meta.h5) that h5dump reads: state complete, one row
# per rank. For eager_flood at least one snapshot must have drained messages. After a
# restart, the outputs of the killed job(s) and the restarted one, one after the other,
# must be the reference (same_as_concat: how lines printed between a commit and the kill
# count).
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

# checkpoint_once NAME I [--term|--incremental]: ompi-checkpoint [OPTION] <mpirun pid>
# must succeed; records the seq and checks the snapshot at once (while the job waits at
# its gate at the latest; with --term the job must end instead)
SEQS=()
CK_SOFT=0 # 1: a failed ompi-checkpoint makes checkpoint_once return 1 (CK_ERROR says why)
CK_KILL=0 CK_KILL_PROCS="" # processes to kill -9 the moment ompi-checkpoint returns (phase_ckpt_kill)
CK_REQ=() # lines of the job's output when checkpoint I was requested (CK_REQ[I-1])
CK_RET=() # ... and when ompi-checkpoint returned
checkpoint_once() {
  local name=$1 i=$2 term=${3:-} pid ref seq dir want
  pid=$(cat "$T/$name.pid")
  local t0=$EPOCHREALTIME
  CK_REQ+=("$(grep -c '' "$T/$name.out" || true)")
  run_checkpoint "ckpt$i" ${term:+"$term"} "$pid"
  if [ -n "$CK_KILL_PROCS" ] && [ $CK_RC -eq 0 ]; then
    # shellcheck disable=SC2086
    kill -9 $CK_KILL_PROCS 2>/dev/null || true
  fi
  CK_RET+=("$(grep -c '' "$T/$name.out" || true)")
  echo "${CK_REQ[-1]}" >"$T/$name.req"
  local took
  took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
  if [ $CK_RC -ne 0 ]; then
    CK_ERROR="$name: ompi-checkpoint ${term:+$term }$pid (checkpoint $i, after line $(grep -c '' "$T/$name.out") of $REF_LINES) exited with $CK_RC: $(head -c 2000 "$T/ckpt$i.err")"
    [ "$CK_SOFT" = 0 ] || return 1
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
  if [ -n "$CK_KILL_PROCS" ]; then
    check_snapshot "$seq" "$dir" "$NP" "$pid"
  elif [ "$term" != --term ]; then
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

# ------------------------------------------------------------ restarts ----
# A job is checkpointed, killed (kill -9 of mpirun and every process below it) and
# restarted with ompi-restart, which becomes the new job's mpirun (same PID), so the
# restarted job can be checkpointed and killed the same way. The restored ranks keep the
# gate file name of the first job in their memory: $T/job.gate ends every generation.
# Outputs: the killed job's stdout followed by the restarted job's stdout must be the
# reference, byte for byte.

CK_N=0 # checkpoints taken in this test (names the files ckptN.out/.err)

# phase_ckpt NAME PCT [OPTION]: when the whole output so far (the earlier generations'
# outputs listed in PREV plus NAME's) reaches PCT% of the reference, one checkpoint
PREV=()
prev_lines() {
  local n=0 p
  for p in "${PREV[@]}"; do n=$((n + $(grep -c '' "$T/$p.out" || true))); done
  echo $n
}
phase_ckpt() {
  local name=$1 pct=$2 opt=${3:-} before want
  before=$(prev_lines)
  want=$(($(line_at "$pct") - before))
  [ $want -ge 1 ] || want=1
  wait_lines "$name" "$want"
  if [ "$CK_KILL" = 1 ]; then # the job's processes, all started by now
    CK_KILL_PROCS="$(cat "$T/$name.pid") $(descendants "$(cat "$T/$name.pid")" | tr '\n' ' ')"
  fi
  CK_N=$((CK_N + 1))
  checkpoint_once "$name" "$CK_N" ${opt:+"$opt"} || return $?
}

# phase_ckpt_kill NAME PCT [OPTION]: phase_ckpt, and kill -9 the job (mpirun and every
# process below it, listed before the checkpoint) the moment ompi-checkpoint returns: the
# ranks go on after the snapshot is committed, and whatever they print after it is
# printed again by the restarted job (the comparisons allow for exactly that)
phase_ckpt_kill() {
  local name=$1 rc=0
  CK_KILL=1
  phase_ckpt "$@" || rc=$?
  CK_KILL=0
  [ $rc -eq 0 ] || { CK_KILL_PROCS=""; return $rc; }
  kill_job "$name" "$CK_KILL_PROCS"
  CK_KILL_PROCS=""
}

# new_job_checkpoints: the next checkpoints are of another job (another global snapshot)
new_job_checkpoints() { SEQS=(); CK_REQ=(); CK_RET=(); }

# wait_end NAME: the job ends by itself (after ompi-checkpoint --term)
wait_end() {
  local name=$1 pid waited=0 rc=0
  pid=$(cat "$T/$name.pid")
  while proc_alive "$pid"; do
    sleep 0.05
    waited=$((waited + 1))
    [ $waited -lt $((OCR_WAIT_LIMIT * 20)) ] || fail "$name: mpirun $pid still running ${OCR_WAIT_LIMIT}s after ompi-checkpoint --term"
  done
  wait "$pid" || rc=$?
  echo "$rc" >"$T/$name.rc"
}

# phase_restart NAME GDIR [OMPI-RESTART OPTIONS...]: restart a snapshot (the gate is
# closed until finish_restart or the job is killed)
phase_restart() {
  local name=$1
  rm -f "$T/job.gate"
  start_restart "$@"
}

# finish_restart NAME: open the gate; the restarted job must end with exit code 0
finish_restart() {
  finish_gate "$1" "$T/job.gate"
  if [ "$JOB_RC" != 0 ]; then
    restart_diagnostics "$1"
    fail "$1: the restarted job (ompi-restart $(cat "$T/$1.cmd")) exited with $JOB_RC"
  fi
}

restart_diagnostics() {
  local f
  for f in "$@"; do
    printf -- '--- %s: %s\n' "$f" "$(cat "$T/$f.cmd" 2>/dev/null)" >&2
    show "$T/$f.err" 40
  done
}

# same_as_concat NAME...: the outputs of the generations NAME... (all killed or ended
# by --term after a checkpoint, but the last) pieced together = the reference. Generation
# i+1 resumes at the cut of the checkpoint it was restarted from, which lies between the
# line count at that checkpoint's request ($T/NAME.req) and the killed job's last line:
# the lines a killed job printed after the cut (between the commit and kill -9) are
# printed again by the next generation. Without such lines this is exactly "the outputs
# one after the other = the reference"; with them, the lines redone are reported.
same_as_concat() {
  local names=("$@") i n s=0 c low high len next parts="" redone=0
  for n in "${names[@]}"; do parts+="$n:$(grep -c '' "$T/$n.out" || true) "; done
  for ((i = 0; i < ${#names[@]}; i++)); do
    n=${names[i]}
    len=$(grep -c '' "$T/$n.out" || true)
    if [ -f "$T/$n.partial" ] && [ "$len" -gt 0 ]; then
      # Its last line lost its end when mpirun was killed: it must be the start of the
      # reference's line there; the rest is taken from the reference.
      local want got
      want=$(sed -n "$((s + len))p" "$T/ref.out")
      got=$(tail -n 1 "$T/$n.out")
      if [ "${want#"$got"}" != "$want" ] || [ -z "$got" ]; then
        head -n $((len - 1)) "$T/$n.out" >"$T/$n.out.whole"
        printf '%s\n' "$want" >>"$T/$n.out.whole"
        mv "$T/$n.out.whole" "$T/$n.out"
        rm -f "$T/$n.partial"
        log "$n: its cut-off last line is the start of reference line $((s + len))"
      fi
    fi
    # piece i = reference lines s+1 .. s+len
    if ! tail -n +$((s + 1)) "$T/ref.out" | head -n "$len" | cmp -s - "$T/$n.out"; then
      concat_failure "${names[*]}" "$parts" "$n" "$s" "its $len lines are not the reference's lines $((s + 1)).. (diff below: reference < > $n)"
    fi
    if [ $i -eq $((${#names[@]} - 1)) ]; then
      [ $((s + len)) -eq "$REF_LINES" ] || concat_failure "${names[*]}" "$parts" "$n" "$s" "it ends at reference line $((s + len)) of $REF_LINES"
      break
    fi
    # the cut: the largest c in [s + req, s + len] at which the next piece matches
    next=${names[i + 1]}
    low=$((s + $(cat "$T/$n.req"))) high=$((s + len))
    local nlen
    nlen=$(grep -c '' "$T/$next.out" || true)
    for ((c = high; c >= low; c--)); do
      if tail -n +$((c + 1)) "$T/ref.out" | head -n "$nlen" | cmp -s - "$T/$next.out"; then break; fi
    done
    [ $c -ge "$low" ] || concat_failure "${names[*]}" "$parts" "$next" "$high" \
      "it does not go on from any line between $low (the checkpoint's request) and $high (the last line of $n)"
    if [ $c -lt $high ]; then
      log "$n printed $((high - c)) line(s) after the cut (between the commit and kill -9); $next printed them again"
      redone=$((redone + high - c))
    fi
    s=$c
  done
  log "outputs of $* ($parts) = the uninterrupted run's output ($REF_LINES lines; $redone redone)"
}

# concat_failure NAMES PARTS NAME START WHAT: report a piece that does not fit
concat_failure() {
  printf -- '--- reference lines %s.. (<) vs. %s (>), first 30 lines of the diff:\n' $(($4 + 1)) "$3" >&2
  diff <(tail -n +$(($4 + 1)) "$T/ref.out") "$T/$3.out" | head -n 30 >&2 || true
  # shellcheck disable=SC2086
  restart_diagnostics $1
  fail "the outputs of $1 (lines per part: $2) do not piece together to the uninterrupted run ($REF_LINES lines): $3: $5"
}

# resumed_at NAME LOW HIGH: the restarted job NAME printed exactly the tail of the
# reference after some line c with LOW <= c <= HIGH (for a restart of an older snapshot,
# whose cut is known only between the line counts at the request and at the return of
# its ompi-checkpoint); sets CUT
resumed_at() {
  local name=$1 low=$2 high=$3 n
  n=$(grep -c '' "$T/$name.out" || true)
  CUT=$((REF_LINES - n))
  if [ $CUT -lt "$low" ] || [ $CUT -gt "$high" ] || ! tail -n "$n" "$T/ref.out" | cmp -s - "$T/$name.out"; then
    printf -- '--- reference vs. the tail of %s (diff of ref lines %s.. and its %s lines, first 30):\n' "$name" $((CUT + 1)) "$n" >&2
    diff <(tail -n "$n" "$T/ref.out") "$T/$name.out" | head -n 30 >&2 || true
    restart_diagnostics "$name"
    fail "$name: its $n lines are not the reference's tail after a line between $low and $high (the checkpoint's request and return)"
  fi
  log "$name: resumed after line $CUT (checkpoint requested at $low, returned at $high): its $n lines = the reference's tail"
}

# snapshot_kind GDIR SEQ KIND [PARENT]: /snapshots/SEQ has kind KIND (and parent_seq)
snapshot_kind() {
  local meta=$1/global_snapshot_meta.h5 k p
  k=$(h5_attr "$meta" "/snapshots/$2" kind)
  [ "$k" = "$3" ] || fail "snapshot $2 of $1: kind '$k', expected $3: $(h5dump -A -g "/snapshots/$2" "$meta" 2>&1 | head -40)"
  if [ $# -ge 4 ]; then
    p=$(h5_attr "$meta" "/snapshots/$2" parent_seq)
    [ "$p" = "$4" ] || fail "snapshot $2 of $1: parent_seq '$p', expected $4"
  fi
  log "snapshot $2: kind $k${4:+, parent $4}"
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
  restart)
    # checkpoint at 40%, kill -9, ompi-restart of the newest snapshot
    phase_job job am OMPI_CR_SNAPSHOT_DIR="$T/snap"
    phase_ckpt_kill job 40
    phase_restart r1 "$SNAP_DIR"
    finish_restart r1
    same_as_concat job r1
    ;;
  restart_multi)
    # checkpoints at 30% and 60%, kill; restart the newer one; then, again, the older
    # one (-s), which must print the reference after the first checkpoint's cut
    phase_job job am OMPI_CR_SNAPSHOT_DIR="$T/snap"
    phase_ckpt job 30
    phase_ckpt_kill job 60
    gdir=$SNAP_DIR
    phase_restart r1 "$gdir"
    finish_restart r1
    same_as_concat job r1
    phase_restart r0 "$gdir" -s "${SEQS[0]}"
    finish_restart r0
    resumed_at r0 "${CK_REQ[0]}" "${CK_RET[0]}"
    ;;
  generations)
    # job -> checkpoint -> kill -> restart r1 -> checkpoint -> kill -> restart r2 ->
    # checkpoint -> kill -> restart r3 (three restarted generations)
    phase_job job am OMPI_CR_SNAPSHOT_DIR="$T/snap"
    phase_ckpt_kill job 25
    prev=job
    for g in 1 2 3; do
      phase_restart "r$g" "$SNAP_DIR"
      PREV+=("$prev")
      prev=r$g
      [ $g -lt 3 ] || break
      new_job_checkpoints
      phase_ckpt_kill "r$g" $((25 + 25 * g))
    done
    finish_restart r3
    same_as_concat job r1 r2 r3
    ;;
  restart_term)
    # ompi-checkpoint --term at 40% ends the job; ompi-restart of that snapshot
    phase_job job am OMPI_CR_SNAPSHOT_DIR="$T/snap"
    phase_ckpt job 40 --term
    wait_end job
    [ "$(h5_attr "$SNAP_DIR/global_snapshot_meta.h5" "/snapshots/${SEQS[0]}" term)" = 1 ] ||
      fail "snapshot ${SEQS[0]}: attribute term is not 1"
    check_snapshot "${SEQS[0]}" "$SNAP_DIR" "$NP" 0
    phase_restart r1 "$SNAP_DIR"
    finish_restart r1
    same_as_concat job r1
    ;;
  restart_incremental)
    # a full checkpoint, two --incremental ones, kill, restart of the newest
    # (incremental) snapshot; then incremental checkpoints of the restarted job (below)
    phase_job job am OMPI_CR_SNAPSHOT_DIR="$T/snap"
    phase_ckpt job 20
    phase_ckpt job 35 --incremental
    phase_ckpt_kill job 50 --incremental
    snapshot_kind "$SNAP_DIR" "${SEQS[0]}" full
    snapshot_kind "$SNAP_DIR" "${SEQS[1]}" incremental "${SEQS[0]}"
    snapshot_kind "$SNAP_DIR" "${SEQS[2]}" incremental "${SEQS[1]}"
    phase_restart r1 "$SNAP_DIR"
    PREV+=(job)
    new_job_checkpoints
    # the restarted job writes a global snapshot directory of its own, which cannot
    # refer to the images it was restored from: its first --incremental checkpoint is
    # either refused (the job goes on) or full; then a full one if needed, then an
    # --incremental one (parent: that full one), kill, restart of the incremental one
    CK_SOFT=1
    first=full
    if phase_ckpt r1 60 --incremental; then
      snapshot_kind "$SNAP_DIR" "${SEQS[0]}" full
    else
      grep -q . "$T/ckpt$CK_N.err" || fail "r1: --incremental checkpoint failed without a message"
      proc_alive "$(cat "$T/r1.pid")" || fail "r1 ended after its refused --incremental checkpoint: $CK_ERROR"
      log "the restarted job's first checkpoint with --incremental: refused (the job goes on): $(head -c 500 "$T/ckpt$CK_N.err")"
      CK_REQ=() CK_RET=()
      first=""
    fi
    CK_SOFT=0
    [ -n "$first" ] || phase_ckpt r1 65
    phase_ckpt_kill r1 80 --incremental
    snapshot_kind "$SNAP_DIR" "${SEQS[0]}" full
    snapshot_kind "$SNAP_DIR" "${SEQS[1]}" incremental "${SEQS[0]}"
    phase_restart r2 "$SNAP_DIR"
    finish_restart r2
    same_as_concat job r1 r2
    ;;
  restart_inflight)
    # checkpoints until one drained messages in flight (eager_flood floods its
    # receiver); kill at once; restart of that snapshot
    phase_job job am OMPI_CR_SNAPSHOT_DIR="$T/snap"
    for pct in 30 40 50 60 70 80; do
      DRAINED_TOTAL=0
      phase_ckpt job $pct
      [ "$DRAINED_TOTAL" -eq 0 ] || break
    done
    [ "$DRAINED_TOTAL" -gt 0 ] || fail "no checkpoint of ${#SEQS[@]} drained any message (drained_messages is 0 in every rank row)"
    kill_job job
    log "snapshot ${SEQS[-1]}: $DRAINED_TOTAL messages drained (restarting it)"
    phase_restart r1 "$SNAP_DIR"
    finish_restart r1
    same_as_concat job r1
    ;;
  *)
    echo "unknown scenario $SCENARIO" >&2
    exit 2
    ;;
esac
