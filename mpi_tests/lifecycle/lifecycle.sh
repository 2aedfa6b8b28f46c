#!/usr/bin/env bash
# Checkpoint requests outside MPI's lifetime (issue 4): before MPI_Init, after
# MPI_Finalize, and in a job whose program never calls MPI. ompi-checkpoint must answer
# with a one-line error naming the reason and a non-zero exit, promptly (never a hang),
# and the job must finish with the output of an undisturbed run.
#
#   lifecycle.sh CASE BIN_DIR COMPONENT_DIR PARAM_SET_DIR PROG_DIR MPIRUN
set -euo pipefail
case_=$1 BIN=$2 COMPONENT_DIR=$3 PARAM_SET_DIR=$4 PROGS=$5 MPIRUN=$6
T=$(mktemp -d /tmp/ompi-cr-lifecycle.XXXXXX)
job=""
cleanup() {
  if [ -n "$job" ] && kill -0 "$job" 2>/dev/null; then kill -9 "$job" 2>/dev/null || true; fi
  rm -rf -- "$T"
}
trap cleanup EXIT
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  for f in "$T"/*.out "$T"/*.err; do
    [ -s "$f" ] && { printf -- '--- %s:\n' "${f##*/}" >&2; head -n 30 "$f" >&2; }
  done
  exit 1
}
export OMPI_MCA_mca_base_component_path="$COMPONENT_DIR:SYS_DEFAULT:USER_DEFAULT"
export OMPI_MCA_mca_base_param_file_path_force="$PARAM_SET_DIR"
export OMPI_CR_SNAPSHOT_DIR=$T/snap
NP=2

start() {  # start ARGS... : the job under C/R in the background
  "$MPIRUN" --oversubscribe --am ft-enable-cr -np $NP "$@" >"$T/job.out" 2>"$T/job.err" </dev/null &
  job=$!
}
wait_line() {  # wait until job.out has a line matching $1
  local n=0
  until grep -q "$1" "$T/job.out" 2>/dev/null; do
    kill -0 "$job" 2>/dev/null || fail "the job ended before printing '$1'"
    sleep 0.05
    n=$((n + 1))
    [ $n -lt 2400 ] || fail "no '$1' after 120 s"
  done
}
expect_refusal() {  # expect_refusal REGEX : ompi-checkpoint fails with one line matching it
  local rc=0
  timeout 120 "$BIN/ompi-checkpoint" "$job" >"$T/ckpt.out" 2>"$T/ckpt.err" || rc=$?
  [ $rc -ne 124 ] || fail "ompi-checkpoint hung"
  [ $rc -ne 0 ] || fail "ompi-checkpoint succeeded; expected a refusal matching '$1'"
  grep -Eq "$1" "$T/ckpt.err" || fail "ompi-checkpoint's message does not match '$1'"
  [ "$(wc -l <"$T/ckpt.err")" -eq 1 ] || fail "ompi-checkpoint printed more than one line"
}
finish() {  # the job ends normally with the reference output
  local rc=0
  wait "$job" || rc=$?
  job=""
  [ $rc -eq 0 ] || fail "the job exited with $rc"
  "$MPIRUN" --oversubscribe -np $NP "$@" >"$T/ref.out" 2>"$T/ref.err" || fail "reference run failed"
  cmp -s "$T/ref.out" "$T/job.out" || fail "the job's output differs from an undisturbed run"
}

case $case_ in
before_init)
  args=("$PROGS/phases" 6000 200 0)
  start "${args[@]}"
  sleep 1.5
  expect_refusal 'rank [0-9]+.*(not called MPI_Init|had not called MPI_Init)'
  finish "${args[@]}"
  ;;
after_finalize)
  args=("$PROGS/phases" 0 200 6000)
  start "${args[@]}"
  wait_line '^finalized'
  sleep 0.5
  expect_refusal 'rank [0-9]+ has already called MPI_Finalize'
  finish "${args[@]}"
  ;;
checkpoint_point)
  # The ranks compute for 8 s without MPI calls but call ompi_cr_checkpoint_point(): the
  # checkpoint must be committed while it still computes (before "compute end").
  args=("$PROGS/phases" 0 200 0 8000)
  start "${args[@]}"
  wait_line '^compute start'
  rc=0
  timeout 120 "$BIN/ompi-checkpoint" "$job" >"$T/ckpt.out" 2>"$T/ckpt.err" || rc=$?
  [ $rc -eq 0 ] || fail "ompi-checkpoint failed ($rc)"
  grep -q '^Snapshot Ref\.: 0 ' "$T/ckpt.out" || fail "no Snapshot Ref. line"
  ! grep -q '^compute end' "$T/job.out" || fail "the checkpoint waited for the end of the computation"
  finish "${args[@]}"
  ;;
subcomm)
  # Sub-communicator collectives mixed with point-to-point across them: five checkpoints
  # in a row at varied points must all complete (never hang) and the job's output stay
  # that of an undisturbed run.
  NP=4
  args=("$PROGS/subcomm_p2p" 3000 150)
  start "${args[@]}"
  wait_line '^iter '
  for i in 1 2 3 4 5; do
    rc=0
    timeout 120 "$BIN/ompi-checkpoint" "$job" >"$T/ckpt.out" 2>"$T/ckpt.err" || rc=$?
    [ $rc -ne 124 ] || fail "checkpoint $i hung"
    [ $rc -eq 0 ] || fail "checkpoint $i failed ($rc)"
    sleep 0.$((RANDOM % 5))
  done
  finish "${args[@]}"
  ;;
no_mpi)
  start /bin/sleep 4
  sleep 1.5
  expect_refusal 'not called MPI_Init'
  wait "$job" || true
  job=""
  ;;
*)
  fail "unknown case $case_"
  ;;
esac
echo "lifecycle $case_: ok"
