#!/usr/bin/env bash
# Launcher tests (mpi_tests/launch.cmake; docs/launch.md).
#
#   launch.sh CASE BIN_DIR COMPONENT_DIR PARAM_SET_DIR PROG_DIR MPIRUN
#
#   CASE           am | plain | exits | options | remote | generic | checkpoint
#   BIN_DIR        the build tree's bin/ (ompi-cr-run, ompi-checkpoint)
#   COMPONENT_DIR  the directory holding mca_shmem_ompicr.so (may be empty for "generic")
#   PARAM_SET_DIR  the directory holding the ft-enable-cr parameter set
#   PROG_DIR       the directory holding mpi_hello and nompi
#   MPIRUN         Open MPI's mpirun
#
# Runs as root (OMPI_ALLOW_RUN_AS_ROOT* are set here) with 3 ranks, --oversubscribe.
# Nothing is installed: Open MPI finds the build tree's component first
# (mca_base_component_path) and the build tree's parameter set (param_file_path_force).
# Every process started is killed on exit; the work directory is removed unless
# OCR_KEEP_TMP=1. A failed check prints "FAIL: ..." with the evidence and exits 1.
set -Eeuo pipefail
# Any unexpected failure names its line (set -e alone would end the test silently).
trap 'echo "FAIL: unexpected status $? at line $LINENO: $BASH_COMMAND" >&2' ERR

[ $# -eq 6 ] || { echo "usage: $0 CASE BIN_DIR COMPONENT_DIR PARAM_SET_DIR PROG_DIR MPIRUN" >&2; exit 2; }
CASE=$1 BIN=$2 COMPONENT_DIR=$3 PARAM_SET_DIR=$4 PROGS=$5 MPIRUN=$6
NP=3
WAIT_LIMIT=${OCR_WAIT_LIMIT:-120}

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# A clean slate: nothing of the caller's Open MPI / ompi-cr settings leaks in.
for v in $(env | sed -n 's/^\(OMPI_MCA_[A-Za-z0-9_]*\)=.*/\1/p; s/^\(OMPI_CR_[A-Za-z0-9_]*\)=.*/\1/p'); do
  unset "$v"
done
unset LD_PRELOAD

T=$(mktemp -d "${TMPDIR:-/tmp}/ompi-cr-launch.XXXXXX")
PIDS=()
# Ends what is left of a job: TERM to mpirun first (it takes its ranks and daemons down),
# KILL to mpirun and its children (by PID) if it is still there after 5 s.
stop_job() {
  local p=$1 kids
  kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$p" 2>/dev/null || return 0
    sleep 0.1
  done
  kids=$(pgrep -P "$p" || true)
  # shellcheck disable=SC2086
  kill -9 "$p" $kids 2>/dev/null || true
}
cleanup() {
  local rc=$? p
  trap - ERR
  for p in "${PIDS[@]}"; do stop_job "$p"; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${OCR_KEEP_TMP:-0}" = 1 ]; then echo "kept $T" >&2; else rm -rf -- "$T"; fi
  [ $rc -eq 0 ] && echo "[launch $CASE] PASS"
  return $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[launch %s] %s\n' "$CASE" "$*"; }
fail() {
  trap - ERR
  printf '\nFAIL: %s\n' "$*" >&2
  local f
  for f in "$T"/*.out "$T"/*.err; do
    [ -s "$f" ] || continue
    printf -- '--- %s:\n' "${f##*/}" >&2
    tail -n 15 "$f" >&2
  done
  exit 1
}
skip() {
  trap - ERR
  echo "SKIP: $*"
  exit 77
}

[ -x "$MPIRUN" ] || skip "no mpirun ($MPIRUN)"
MPIEXEC=$(dirname "$MPIRUN")/mpiexec   # the same program under its other name
[ -x "$MPIEXEC" ] || MPIEXEC=$MPIRUN
if [ ! -x "$PROGS/mpi_hello" ] || [ ! -x "$PROGS/nompi" ]; then
  fail "test programs missing in $PROGS (not built?)"
fi
[ -x "$BIN/ompi-cr-run" ] || fail "$BIN/ompi-cr-run missing (not built?)"

# Private control and snapshot directories (the runtime and the tools agree on them).
export OMPI_CR_CONTROL_DIR=$T/ctl OMPI_CR_SNAPSHOT_DIR=$T/snap
mkdir -p "$T/snap"

use_build_component() {
  [ -f "$COMPONENT_DIR/mca_shmem_ompicr.so" ] || fail "no $COMPONENT_DIR/mca_shmem_ompicr.so (not built?)"
  [ -f "$PARAM_SET_DIR/ft-enable-cr" ] || fail "no $PARAM_SET_DIR/ft-enable-cr"
  export OMPI_MCA_mca_base_component_path="$COMPONENT_DIR:SYS_DEFAULT:USER_DEFAULT"
  export OMPI_MCA_mca_base_param_file_path_force="$PARAM_SET_DIR"
}

# ---------------------------------------------------------------------------------------
# run NAME [env...] -- MPIRUN-ARGS...
#   Runs mpirun in the background (so that its PID is known), waits for it. Leaves
#   $T/NAME.out, $T/NAME.err, $T/NAME.rc, $T/NAME.pid and the rank reports in $T/NAME.rep/.
#   With GATE=1 the program must be mpi_hello --gate $T/NAME.gate: then the function
#   calls "on_gate NAME PID" once every rank has reported, and opens the gate.
run() {
  local name=$1; shift
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  mkdir -p "$T/$name.rep"
  printf '%s ' "${LAUNCHER:-$MPIRUN}" "$@" >"$T/$name.argv"
  env OCR_REPORT_DIR="$T/$name.rep" "${envs[@]}" "${LAUNCHER:-$MPIRUN}" "$@" >"$T/$name.out" 2>"$T/$name.err" &
  local pid=$!
  PIDS+=("$pid")
  echo "$pid" >"$T/$name.pid"
  if [ "${GATE:-0}" = 1 ]; then
    local waited=0
    until [ -e "$T/$name.rep/ready" ]; do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
      waited=$((waited + 1))
      [ $waited -lt $((WAIT_LIMIT * 20)) ] || fail "$name: ranks not ready after ${WAIT_LIMIT}s"
    done
    [ -e "$T/$name.rep/ready" ] || { wait "$pid" || true; fail "$name: mpirun ended before the gate"; }
    on_gate "$name" "$pid"
    touch "$T/$name.gate"
  fi
  local rc=0
  wait "$pid" || rc=$?
  echo "$rc" >"$T/$name.rc"
}

rc_of() { cat "$T/$1.rc"; }
pid_of() { cat "$T/$1.pid"; }
reports() { # the finished reports of TAG in run NAME
  local f
  for f in "$T/$1.rep/$2".*; do
    if [ -e "$f" ] && [ "${f%.tmp}" = "$f" ]; then echo "$f"; fi
  done
}
field() { sed -n "s/^$2=//p" "$1"; }
# mapped REPORT REGEX: does the report's list of mapped libraries match? (no pipeline:
# with pipefail, grep -q ending early could fail the writer with SIGPIPE)
mapped() {
  local m
  m=$(field "$1" mapped)
  [[ $m =~ $2 ]]
}

# check_ranks NAME TAG COUNT yes|no [MPIRUN_PID]
#   yes: every report shows the runtime mapped, its agent file, OMPI_CR_MPIRUN_PID equal
#        to mpirun's PID (which is also the parent), no patched libc text, no UCX;
#   no:  no report shows any of it.
check_ranks() {
  local name=$1 tag=$2 count=$3 want=$4 mpid=${5:-}
  local files n f
  files=$(reports "$name" "$tag")
  n=$(echo "$files" | grep -c . || true)
  [ "$n" -eq "$count" ] || fail "$name: $n $tag reports, expected $count: $(ls "$T/$name.rep")"
  for f in $files; do
    local what
    what="$name: ${f##*/} ($(tr '\n' ' ' <"$f"))"
    if [ "$want" = yes ]; then
      [ "$(field "$f" runtime)" = 1 ] || fail "$what: libompi-cr.so not mapped"
      [ "$(field "$f" agent)" = 1 ] || fail "$what: no agent file in $OMPI_CR_CONTROL_DIR"
      if [ -n "$mpid" ]; then
        [ "$(field "$f" mpirun_pid)" = "$mpid" ] || fail "$what: OMPI_CR_MPIRUN_PID is not mpirun's PID $mpid"
        [ "$(field "$f" ppid)" = "$mpid" ] || fail "$what: parent is not mpirun $mpid"
      fi
      [ "$(field "$f" libc_text_dirty_kb)" = 0 ] || fail "$what: libc's code was patched"
      case "$(field "$f" libc_text_dirty_kb_end)" in
        "" | 0) ;;
        *) fail "$what: libc's code was patched during the run" ;;
      esac
      ! mapped "$f" 'ucx|libucp|libucs|libfabric|libpsm' || fail "$what: UCX/OFI/PSM loaded"
    else
      [ "$(field "$f" runtime)" = 0 ] || fail "$what: libompi-cr.so mapped"
      [ "$(field "$f" agent)" = 0 ] || fail "$what: agent file exists"
      [ -z "$(field "$f" mpirun_pid)" ] || fail "$what: OMPI_CR_MPIRUN_PID set"
      [ -z "$(field "$f" ld_preload)" ] || fail "$what: LD_PRELOAD set"
    fi
  done
}

same_output() { # NAME1 NAME2: same stdout and exit code
  cmp -s "$T/$1.out" "$T/$2.out" ||
    fail "stdout differs between $1 and $2: $(diff "$T/$1.out" "$T/$2.out" | head -20)"
  [ "$(rc_of "$1")" = "$(rc_of "$2")" ] || fail "exit code $1 $(rc_of "$1") != $2 $(rc_of "$2")"
}

# The component says what it does on stderr with OMPI_CR_VERBOSE=1.
reexeced() { grep -q "ompi-cr: mpirun\[$(pid_of "$1")\]: re-executing" "$T/$1.err"; }

on_gate() { :; }
NOAM=(--oversubscribe -np "$NP")
AM=(--am ft-enable-cr --oversubscribe -np "$NP")

# ---------------------------------------------------------------------------------------
case "$CASE" in

am | plain)
  # 1 and 2: the same job with and without --am ft-enable-cr. While the ranks wait at the
  # gate, mpirun's own /proc entries show whether it was re-executed (same PID, same
  # command line, its environment then carries OMPI_CR_MPIRUN_PID=<its PID>).
  use_build_component
  on_gate() {
    local name=$1 pid=$2
    tr '\0' '\n' </proc/"$pid"/environ >"$T/$name.mpirun-env"
    tr '\0' ' ' </proc/"$pid"/cmdline >"$T/$name.mpirun-cmdline"
    readlink /proc/"$pid"/exe >"$T/$name.mpirun-exe"
  }
  GATE=1 run plain OMPI_CR_VERBOSE=1 -- "${NOAM[@]}" "$PROGS/mpi_hello" --gate "$T/plain.gate"
  GATE=1 run am OMPI_CR_VERBOSE=1 -- "${AM[@]}" "$PROGS/mpi_hello" --gate "$T/am.gate"
  [ "$(rc_of plain)" = 0 ] || fail "plain run: exit code $(rc_of plain)"
  grep -q "hello from $NP ranks" "$T/plain.out" || fail "plain run: unexpected output"
  grep -q "checksum" "$T/plain.out" || fail "plain run: no checksum line"
  same_output plain am
  for name in plain am; do
    cmp -s "$T/$name.argv" "$T/$name.mpirun-cmdline" ||
      fail "$name: mpirun's command line is \"$(cat "$T/$name.mpirun-cmdline")\", started as \"$(cat "$T/$name.argv")\""
  done
  cmp -s "$T/plain.mpirun-exe" "$T/am.mpirun-exe" || fail "mpirun's executable differs"
  if [ "$CASE" = am ]; then
    reexeced am || fail "am: mpirun did not report its re-exec"
    grep -qx "OMPI_CR_MPIRUN_PID=$(pid_of am)" "$T/am.mpirun-env" ||
      fail "am: mpirun (pid $(pid_of am)) was not re-executed with OMPI_CR_MPIRUN_PID"
    ! grep -q '^LD_PRELOAD=' "$T/am.mpirun-env" || fail "am: mpirun itself got LD_PRELOAD"
    grep -qx 'OMPI_MCA_pml=ob1' "$T/am.mpirun-env" || fail "am: pml=ob1 not exported"
    grep -qx 'OMPI_MCA_btl=self,vader,tcp' "$T/am.mpirun-env" || fail "am: btl not exported"
    check_ranks am hello $NP yes "$(pid_of am)"
    for f in $(reports am hello); do
      mapped "$f" mca_pml_ob1 || fail "am: ${f##*/}: ob1 not loaded"
      [ "$(field "$f" env_pml)" = ob1 ] || fail "am: ${f##*/}: OMPI_MCA_pml not ob1"
    done
    log "3 ranks under the runtime (agent files present), OMPI_CR_MPIRUN_PID=$(pid_of am), output identical"
  else
    ! grep -q 'ompi-cr' "$T/plain.err" || fail "plain: the component acted: $(grep ompi-cr "$T/plain.err")"
    ! grep -q '^OMPI_CR_MPIRUN_PID=' "$T/plain.mpirun-env" || fail "plain: mpirun was re-executed"
    check_ranks plain hello $NP no
    log "no rank changed, mpirun not re-executed"
  fi
  ;;

exits)
  # 3: same behaviour and exit code with and without --am ft-enable-cr.
  use_build_component
  for spec in "nompi0|nompi|0" "nompi3|nompi|3" "multiple|mpi_hello|--thread-multiple" \
              "abort|mpi_hello|--abort 5" "exit3|mpi_hello|--exit 3"; do
    IFS='|' read -r label prog args <<<"$spec"
    # shellcheck disable=SC2086
    run "$label-plain" -- "${NOAM[@]}" "$PROGS/$prog" $args
    # shellcheck disable=SC2086
    run "$label-am" -- "${AM[@]}" "$PROGS/$prog" $args
    if [ "$prog" = nompi ]; then
      sort "$T/$label-plain.out" -o "$T/$label-plain.out"  # one line per process, any order
      sort "$T/$label-am.out" -o "$T/$label-am.out"
    fi
    same_output "$label-plain" "$label-am"
    tag=$([ "$prog" = nompi ] && echo nompi || echo hello)
    check_ranks "$label-plain" "$tag" $NP no
    check_ranks "$label-am" "$tag" $NP yes "$(pid_of "$label-am")"
    log "$prog $args: exit code $(rc_of "$label-am") with and without --am, same stdout, runtime in every rank"
  done
  [ "$(rc_of nompi0-am)" = 0 ] || fail "nompi 0: exit code $(rc_of nompi0-am)"
  [ "$(rc_of nompi3-am)" = 3 ] || fail "nompi 3: exit code $(rc_of nompi3-am), expected 3"
  [ "$(rc_of multiple-am)" = 0 ] || fail "thread-multiple: exit code $(rc_of multiple-am)"
  grep -qx 'thread level multiple' "$T/multiple-am.out" || fail "MPI_THREAD_MULTIPLE not provided"
  [ "$(rc_of abort-am)" = 5 ] || fail "MPI_Abort(5): exit code $(rc_of abort-am)"
  # (stderr is not compared: stock mpirun 4.1.4 loses its MPI_ABORT message now and then,
  # "ORTE_ERROR_LOG: Data unpack would read past end of buffer ... show_help.c", and prints
  # its non-zero-exit block or not depending on timing; both seen without ompi-cr.)
  [ "$(rc_of exit3-am)" = 3 ] || fail "exit(3): exit code $(rc_of exit3-am)"
  ;;

options)
  # The user's own options combine with the component's: -x, mca_base_env_list, --mca and
  # environment settings win over the parameter file, --tune works like --am.
  use_build_component
  run x -- "${AM[@]}" -x OCR_X_FOO=bar "$PROGS/nompi"
  check_ranks x nompi $NP yes "$(pid_of x)"
  [ "$(rc_of x)" = 0 ] || fail "-x: exit code $(rc_of x)"
  run envlist OMPI_MCA_mca_base_env_list='OCR_X_FOO=bar' -- "${AM[@]}" "$PROGS/nompi"
  [ "$(rc_of envlist)" = 0 ] || fail "mca_base_env_list: exit code $(rc_of envlist)"
  check_ranks envlist nompi $NP yes "$(pid_of envlist)"
  run cmdlist -- "${AM[@]}" --mca mca_base_env_list 'OCR_X_FOO=bar' "$PROGS/nompi"
  [ "$(rc_of cmdlist)" = 0 ] || fail "--mca mca_base_env_list: exit code $(rc_of cmdlist)"
  check_ranks cmdlist nompi $NP yes "$(pid_of cmdlist)"
  for name in x envlist cmdlist; do
    for f in $(reports $name nompi); do
      grep -qx 'env_OCR_X_FOO=bar' "$f" || fail "$name: ${f##*/}: the user's variable did not arrive"
    done
  done
  run mca -- "${AM[@]}" --mca btl self,tcp "$PROGS/mpi_hello"
  [ "$(rc_of mca)" = 0 ] || fail "--mca btl self,tcp: exit code $(rc_of mca)"
  run envmca OMPI_MCA_btl=self,tcp -- "${AM[@]}" "$PROGS/mpi_hello"
  [ "$(rc_of envmca)" = 0 ] || fail "OMPI_MCA_btl=self,tcp: exit code $(rc_of envmca)"
  for name in mca envmca; do
    check_ranks $name hello $NP yes "$(pid_of $name)"
    for f in $(reports $name hello); do
      ! mapped "$f" mca_btl_vader || fail "$name: ${f##*/}: vader loaded despite btl=self,tcp"
      mapped "$f" mca_btl_tcp || fail "$name: ${f##*/}: tcp not loaded"
    done
  done
  # Dynamic processes are outside what checkpoint/restart supports: MPI_Comm_spawn fails
  # loudly, naming the call, instead of bypassing the protocol.
  run spawn -- "${AM[@]}" "$PROGS/mpi_hello" --spawn
  [ "$(rc_of spawn)" != 0 ] || fail "MPI_Comm_spawn under ft-enable-cr did not fail"
  grep -q 'MPI_Comm_spawn is not supported under checkpoint/restart' "$T/spawn.err" ||
    fail "MPI_Comm_spawn: no message naming the call"
  run tune -- --tune ft-enable-cr --oversubscribe -np $NP "$PROGS/nompi"
  [ "$(rc_of tune)" = 0 ] || fail "--tune: exit code $(rc_of tune)"
  check_ranks tune nompi $NP yes "$(pid_of tune)"
  LAUNCHER=$MPIEXEC run mpiexec -- --am ft-enable-cr --oversubscribe -n $NP "$PROGS/nompi"
  check_ranks mpiexec nompi $NP yes "$(pid_of mpiexec)"
  ! grep -q 'Unable to locate' "$T"/*.err || fail "Open MPI could not find the parameter set"
  log "-x, mca_base_env_list (environment and --mca), --mca, OMPI_MCA_*, --tune and mpiexec work with ft-enable-cr; MPI_Comm_spawn fails loudly"
  ;;

remote)
  # Ranks under a second daemon, as on another node: the "ssh" agent is a script that
  # starts orted here with a clean environment (nothing inherited from mpirun), so what
  # reaches those ranks travels with the job (Open MPI's app environment).
  use_build_component
  fake_ssh=$T/fake-ssh
  cat >"$fake_ssh" <<'EOS'
#!/bin/sh
# fake-ssh [ssh options] HOST COMMAND...: runs COMMAND here, environment as after a login
while [ $# -gt 0 ]; do case "$1" in -*) shift ;; *) break ;; esac; done
shift
exec env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$HOME" OMPI_ALLOW_RUN_AS_ROOT=1 \
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 /bin/sh -c "$*"
EOS
  chmod +x "$fake_ssh"
  # shellcheck disable=SC2054  # the commas belong to --host's argument
  REMOTE=(--mca plm_rsh_agent "$fake_ssh" --host localhost:1,127.0.0.2:2 --oversubscribe -np "$NP")
  run remote-plain -- "${REMOTE[@]}" -x OCR_REPORT_DIR="$T/remote-plain.rep" "$PROGS/mpi_hello"
  run remote-am -- --am ft-enable-cr "${REMOTE[@]}" -x OCR_REPORT_DIR="$T/remote-am.rep" "$PROGS/mpi_hello"
  same_output remote-plain remote-am
  [ "$(rc_of remote-am)" = 0 ] || fail "remote: exit code $(rc_of remote-am)"
  check_ranks remote-plain hello $NP no
  # OMPI_CR_MPIRUN_PID everywhere; the parent is mpirun for one rank, orted for two.
  mpid=$(pid_of remote-am)
  for f in $(reports remote-am hello); do
    if [ "$(field "$f" runtime)" != 1 ] || [ "$(field "$f" agent)" != 1 ]; then
      fail "remote: ${f##*/}: runtime missing ($(tr '\n' ' ' <"$f"))"
    fi
    [ "$(field "$f" mpirun_pid)" = "$mpid" ] || fail "remote: ${f##*/}: OMPI_CR_MPIRUN_PID not $mpid"
    [ "$(field "$f" env_pml)" = ob1 ] || fail "remote: ${f##*/}: parameters did not arrive"
  done
  n=$(grep -l "^ppid=$mpid\$" "$T"/remote-am.rep/hello.* | wc -l)
  [ "$n" = 1 ] || fail "remote: expected one rank under mpirun and two under the second daemon, got $n under mpirun"
  log "ranks under a separate daemon with a clean environment get the runtime, OMPI_CR_MPIRUN_PID and the parameters"
  ;;

generic)
  # 4: the generic route needs no component: mpiexec -n 2 ompi-cr-run ./mpi_hello
  unset OMPI_MCA_mca_base_component_path
  LAUNCHER=$MPIEXEC run plain -- --oversubscribe -n 2 "$PROGS/mpi_hello"
  LAUNCHER=$MPIEXEC run wrapped -- --oversubscribe -n 2 "$BIN/ompi-cr-run" "$PROGS/mpi_hello"
  [ "$(rc_of wrapped)" = 0 ] || fail "ompi-cr-run route: exit code $(rc_of wrapped)"
  same_output plain wrapped
  check_ranks plain hello 2 no
  check_ranks wrapped hello 2 yes
  log "mpiexec -n 2 ompi-cr-run ./mpi_hello: both ranks under the runtime, same output"
  ;;

checkpoint)
  # 5: ompi-checkpoint --pid <rank> of two ranks of a running job (one busy in MPI_Bcast,
  # rank 0 polling for the gate file): each checkpoint succeeds, the job continues and
  # ends with the output of an uninterrupted run.
  use_build_component
  [ -x "$BIN/ompi-checkpoint" ] || fail "$BIN/ompi-checkpoint missing"
  on_gate() {
    local name=$1 f rank pid
    [ "$name" = ckpt ] || return 0
    for rank in 1 0; do
      f=$(grep -lx "rank=$rank" "$T/$name.rep"/hello.* | head -1)
      pid=$(field "$f" pid)
      log "checkpointing rank $rank (pid $pid)"
      "$BIN/ompi-checkpoint" --pid "$pid" --timeout "$WAIT_LIMIT" >"$T/ckpt-rank$rank.out" \
        2>"$T/ckpt-rank$rank.err" || fail "ompi-checkpoint of rank $rank (pid $pid) failed"
      kill -0 "$pid" || fail "rank $rank (pid $pid) ended after its checkpoint"
      grep -q '^Image: ' "$T/ckpt-rank$rank.out" || fail "ompi-checkpoint printed no image"
      if [ -x "$BIN/ompi-cr-info" ]; then # the image is complete and its checksums match
        "$BIN/ompi-cr-info" "$(sed -n 's/^Image: //p' "$T/ckpt-rank$rank.out")" \
          >"$T/info-rank$rank.out" 2>&1 || fail "ompi-cr-info rejects the image of rank $rank"
      fi
    done
  }
  GATE=1 run plain -- "${NOAM[@]}" "$PROGS/mpi_hello" --gate "$T/plain.gate" --iters 20
  GATE=1 run ckpt -- "${AM[@]}" "$PROGS/mpi_hello" --gate "$T/ckpt.gate" --iters 20
  [ "$(rc_of ckpt)" = 0 ] || fail "job with checkpoints: exit code $(rc_of ckpt)"
  same_output plain ckpt
  check_ranks ckpt hello $NP yes "$(pid_of ckpt)"
  log "2 ranks checkpointed mid-job ($(sed -n 's/^Image: //p' "$T"/ckpt-rank*.out | tr '\n' ' ')); output identical"
  ;;

*)
  echo "unknown case $CASE" >&2
  exit 2
  ;;
esac
