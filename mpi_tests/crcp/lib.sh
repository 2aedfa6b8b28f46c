# shellcheck shell=bash
# Helpers of the coordinated-checkpoint tests (mpi_tests/crcp/harness.sh, crcp.cmake).
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   crcp_init BIN_DIR COMPONENT_DIR PARAM_SET_DIR PROG_DIR MPIRUN
#
# Conventions (as in tests/scripts/lib.sh and mpi_tests/launch/launch.sh):
#   - Every test works in its own directory $T (removed on exit unless OCR_KEEP_TMP=1);
#     snapshots go to $T/snap, control files to $T/ctl.
#   - Nothing depends on timing. The programs wait at their end, before the last line,
#     until the gate file named by CRCP_GATE exists (mpi_tests/programs/common.h), so a
#     job can never end while a checkpoint is being taken; checkpoints are placed by
#     counting the job's output lines. Polls have a generous bound (OCR_WAIT_LIMIT
#     seconds) only to report a hang clearly before ctest's TIMEOUT fires.
#   - Every mpirun started is recorded and ended on exit (TERM, then KILL by PID).
#   - A failed check prints "FAIL: <what>" with the evidence and exits 1.

OCR_WAIT_LIMIT=${OCR_WAIT_LIMIT:-240}    # seconds; hang detection only
OCR_TOOL_TIMEOUT=${OCR_TOOL_TIMEOUT:-300} # seconds for one ompi-checkpoint
CRCP_PIDS=()
CRCP_IMMUTABLE=() # directories made immutable (chattr +i), made mutable again on exit
T=""

log() { printf '[%s] %s\n' "${CRCP_TEST:-crcp}" "$*"; }

# show FILE [LINES]: the last lines of a file for a failure report
show() {
  [ -e "$1" ] || return 0
  printf -- '--- %s (%s lines, last %s):\n' "${1##*/}" "$(grep -c '' "$1" 2>/dev/null || true)" "${2:-15}" >&2
  tail -n "${2:-15}" "$1" >&2 || true
}

fail() {
  trap - ERR
  printf '\nFAIL: %s\n' "$*" >&2
  if [ -n "$T" ] && [ -d "$T" ]; then
    local f
    for f in "$T"/*.out "$T"/*.err; do
      [ -s "$f" ] && show "$f"
    done
    if [ -d "$T/snap" ]; then
      printf -- '--- files in %s:\n' "$T/snap" >&2
      (cd "$T/snap" && find . -maxdepth 4 -printf '%10s  %p\n' 2>/dev/null | sort -k2 | head -40) >&2 || true
    fi
  fi
  exit 1
}

skip() {
  trap - ERR
  printf 'SKIP: %s\n' "$*"
  exit 77
}

proc_alive() { # PID: exists and is not a zombie
  local st
  st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# stop_job PID: TERM to mpirun (it takes its ranks down), KILL to it and its children
# after 5 s.
stop_job() {
  local p=$1 kids
  proc_alive "$p" || return 0
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 50); do
    proc_alive "$p" || return 0
    sleep 0.1
  done
  kids=$(pgrep -P "$p" || true)
  # shellcheck disable=SC2086
  kill -9 "$p" $kids 2>/dev/null || true
}

crcp_cleanup() {
  local rc=$? p d
  trap - ERR
  for p in "${CRCP_PIDS[@]}"; do stop_job "$p"; done
  for p in "${CRCP_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for d in "${CRCP_IMMUTABLE[@]}"; do chattr -i "$d" 2>/dev/null || true; done
  if [ -n "$T" ] && [ -d "$T" ]; then
    if [ "${OCR_KEEP_TMP:-0}" = 1 ]; then echo "kept $T" >&2; else rm -rf -- "$T"; fi
  fi
  [ $rc -ne 0 ] || log PASS
  return $rc
}

# crcp_init BIN_DIR COMPONENT_DIR PARAM_SET_DIR PROG_DIR MPIRUN
crcp_init() {
  BIN=$1 COMPONENT_DIR=$2 PARAM_SET_DIR=$3 PROGS=$4 MPIRUN=$5
  [ -x "$MPIRUN" ] || skip "no mpirun ($MPIRUN)"
  command -v h5dump >/dev/null || skip "no h5dump (hdf5-tools)"
  [ -x "$BIN/ompi-checkpoint" ] || fail "$BIN/ompi-checkpoint missing (not built?)"
  [ -f "$COMPONENT_DIR/mca_shmem_ompicr.so" ] || fail "no $COMPONENT_DIR/mca_shmem_ompicr.so (not built?)"
  [ -f "$PARAM_SET_DIR/ft-enable-cr" ] || fail "no $PARAM_SET_DIR/ft-enable-cr"
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  # A clean slate: nothing of the caller's Open MPI / ompi-cr settings leaks in.
  local v
  for v in $(env | sed -n 's/^\(OMPI_MCA_[A-Za-z0-9_]*\)=.*/\1/p; s/^\(OMPI_CR_[A-Za-z0-9_]*\)=.*/\1/p'); do
    unset "$v"
  done
  unset LD_PRELOAD CRCP_GATE
  T=$(mktemp -d "${TMPDIR:-/tmp}/ompi-cr-crcp.XXXXXX")
  trap crcp_cleanup EXIT
  trap 'exit 130' INT TERM
  trap 'fail "unexpected status $? at line $LINENO: $BASH_COMMAND"' ERR
  mkdir -p "$T/snap" "$T/ctl"
  export OMPI_CR_CONTROL_DIR=$T/ctl
}

# ------------------------------------------------------------------- jobs ----

# start_job NAME MODE PROGRAM NP [VAR=VALUE...] -- PROGRAM_ARGS...
#   MODE am: mpirun --am ft-enable-cr with the build tree's component; plain: mpirun.
#   The job waits at its end for the gate $T/NAME.gate (open_gate NAME). Leaves
#   $T/NAME.out, $T/NAME.err, $T/NAME.pid; sets JOB_PID.
start_job() {
  local name=$1 mode=$2 prog=$3 np=$4
  shift 4
  local envs=(CRCP_GATE="$T/$name.gate")
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  local args=(--oversubscribe -np "$np" -x CRCP_GATE)
  if [ "$mode" = am ]; then
    envs+=(OMPI_MCA_mca_base_component_path="$COMPONENT_DIR:SYS_DEFAULT:USER_DEFAULT"
      OMPI_MCA_mca_base_param_file_path_force="$PARAM_SET_DIR")
    args=(--am ft-enable-cr "${args[@]}")
  fi
  printf '%s ' "${envs[@]}" "$MPIRUN" "${args[@]}" "$PROGS/$prog" "$@" >"$T/$name.cmd"
  env "${envs[@]}" "$MPIRUN" "${args[@]}" "$PROGS/$prog" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
  JOB_PID=$!
  CRCP_PIDS+=("$JOB_PID")
  echo "$JOB_PID" >"$T/$name.pid"
  log "started $name ($mode): mpirun pid $JOB_PID: $prog $* ($np ranks)"
}

open_gate() { touch "$T/$1.gate"; }

# finish_job NAME: open the gate, wait for mpirun; sets JOB_RC
finish_job() {
  local name=$1 pid waited=0
  pid=$(cat "$T/$name.pid")
  open_gate "$name"
  while proc_alive "$pid"; do
    sleep 0.05
    waited=$((waited + 1))
    [ $waited -lt $((OCR_WAIT_LIMIT * 20)) ] || fail "$name: mpirun $pid still running ${OCR_WAIT_LIMIT}s after its gate opened (hang?)"
  done
  JOB_RC=0
  wait "$pid" || JOB_RC=$?
  echo "$JOB_RC" >"$T/$name.rc"
}

# wait_lines NAME N: until the job's stdout has N lines (the job must still run)
wait_lines() {
  local name=$1 n=$2 pid waited=0 have
  pid=$(cat "$T/$name.pid")
  while :; do
    have=$(grep -c '' "$T/$name.out" 2>/dev/null || true)
    [ "${have:-0}" -lt "$n" ] || return 0
    proc_alive "$pid" || fail "$name: mpirun $pid ended with only ${have:-0} of $n lines of output"
    sleep 0.02
    waited=$((waited + 1))
    [ $waited -lt $((OCR_WAIT_LIMIT * 50)) ] || fail "$name: only ${have:-0} of $n lines after ${OCR_WAIT_LIMIT}s (hang?)"
  done
}

# same_as_reference NAME: stdout byte for byte equal to $T/ref.out, exit code 0
same_as_reference() {
  local name=$1
  [ "$(cat "$T/$name.rc")" = 0 ] || fail "$name: mpirun exited with $(cat "$T/$name.rc")"
  if ! cmp "$T/ref.out" "$T/$name.out" >"$T/$name.cmp" 2>&1; then
    diff "$T/ref.out" "$T/$name.out" | head -n 20 >&2 || true
    fail "$name: stdout differs from the uninterrupted run: $(cat "$T/$name.cmp")"
  fi
}

# ------------------------------------------------------------ ompi-checkpoint ----

# run_checkpoint NAME ARGS...: ompi-checkpoint ARGS; $T/NAME.out/.err; sets CK_RC
run_checkpoint() {
  local name=$1
  shift
  CK_RC=0
  timeout -k 10 "$OCR_TOOL_TIMEOUT" "$BIN/ompi-checkpoint" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null || CK_RC=$?
  [ $CK_RC -ne 124 ] || fail "ompi-checkpoint $* did not finish within ${OCR_TOOL_TIMEOUT}s"
}

# expect_refusal WHAT NAME: the last run_checkpoint failed the way bad input should:
# non-zero (not a signal, not a timeout), one line on stderr naming a reason, nothing
# that looks like a snapshot reference on stdout.
expect_refusal() {
  local what=$1 name=$2 lines
  [ "$CK_RC" -ne 0 ] || fail "$what: ompi-checkpoint succeeded (exit 0), expected a refusal"
  [ "$CK_RC" -lt 128 ] || fail "$what: ompi-checkpoint died of signal $((CK_RC - 128))"
  if grep -Eqi 'segmentation fault|core dumped|terminate called|sanitizer|assertion .*failed' "$T/$name.err"; then
    fail "$what: ompi-checkpoint crashed: $(head -c 1000 "$T/$name.err")"
  fi
  lines=$(grep -c '' "$T/$name.err" || true)
  [ "$lines" -eq 1 ] || fail "$what: expected a one-line message on stderr, got $lines lines: $(head -c 2000 "$T/$name.err")"
  ! grep -q 'Snapshot Ref' "$T/$name.out" || fail "$what: a snapshot reference was printed: $(cat "$T/$name.out")"
  # a usage error is not a refusal of the input: the call itself was not understood
  if grep -Eqi 'invalid argument|required|usage|--help' "$T/$name.err"; then
    fail "$what: ompi-checkpoint did not understand 'ompi-checkpoint <PID>': $(cat "$T/$name.err")"
  fi
  log "$what: refused (exit $CK_RC): $(cat "$T/$name.err")"
}

# ------------------------------------------------------------------- HDF5 ----

# h5_attr FILE GROUP NAME: the value of a scalar attribute (strings without quotes)
h5_attr() {
  h5dump -A -g "$2" "$1" 2>/dev/null | awk -v want="$3" '
    $1 == "ATTRIBUTE" { inattr = ($2 == "\"" want "\"") ; next }
    inattr && /^ *\(0\): / { sub(/^ *\(0\): /, ""); gsub(/^"|"$/, ""); print; exit }'
}

# h5_rows FILE DATASET: a 1-D compound dataset as one line per row, members as
# NAME=VALUE separated by tabs (strings without quotes; array members as "[a,b,...]").
h5_rows() {
  h5dump -d "$2" "$1" 2>/dev/null | awk '
    function flush_rec() {
      if (nv > 0) { line = ""; for (i = 1; i <= nv; i++) line = line (i > 1 ? "\t" : "") name[i] "=" val[i]; print line }
      nv = 0
    }
    # member names: the "name"; closing a line at depth 1 of the DATATYPE block
    !indata && /DATATYPE *H5T_COMPOUND/ { intype = 1; depth = 0 }
    intype && !indata {
      line = $0; o = gsub(/\{/, "{", line); c = gsub(/\}/, "}", line); depth += o - c
      if (depth == 1 && match($0, /"[^"]*"; *$/)) { n = substr($0, RSTART + 1); sub(/"; *$/, "", n); name[++nn] = n }
      if (depth <= 0) intype = 0
      next
    }
    /^ *DATA \{/ { indata = 1; next }
    indata {
      s = $0
      while (length(s) > 0) {
        ch = substr(s, 1, 1)
        if (ch ~ /[ \t,]/) { s = substr(s, 2); continue }
        if (match(s, /^\([0-9,]+\): */)) { s = substr(s, RLENGTH + 1); continue }
        if (ch == "{") { rdepth++; if (rdepth == 1) nv = 0; s = substr(s, 2); continue }
        if (ch == "}") { if (rdepth == 1) flush_rec(); rdepth--; if (rdepth < 0) { indata = 0; break } s = substr(s, 2); continue }
        if (ch == "\"") { match(s, /^"([^"\\]|\\.)*"/); tok = substr(s, 2, RLENGTH - 2); s = substr(s, RLENGTH + 1) }
        else if (ch == "[") { if (match(s, /^\[[^\]]*\]/)) { tok = substr(s, 1, RLENGTH); s = substr(s, RLENGTH + 1) } else { tok = s; s = "" } gsub(/ /, "", tok) }
        else { match(s, /^[^ ,{}]+/); tok = substr(s, 1, RLENGTH); s = substr(s, RLENGTH + 1) }
        if (rdepth == 1) val[++nv] = tok
      }
    }'
}

# field ROW NAME: one member of a row printed by h5_rows
field() { printf '%s\n' "$1" | tr '\t' '\n' | sed -n "s/^$2=//p" | head -n 1; }

# check_snapshot SEQ DIR NP MPIRUN_PID: the metadata of one committed snapshot:
# state complete, one row per rank, ranks 0..NP-1 once each, each with its image file,
# a pid that is a rank of this job (a child of mpirun, when still running), bytes
# written. Adds the snapshot's drained messages to DRAINED_TOTAL.
DRAINED_TOTAL=0
check_snapshot() {
  local seq=$1 dir=$2 np=$3 mpid=$4 meta=$2/global_snapshot_meta.h5 state rows n r rank pid img
  [ -f "$meta" ] || fail "snapshot $seq: no $meta"
  state=$(h5_attr "$meta" "/snapshots/$seq" state)
  [ "$state" = complete ] ||
    fail "snapshot $seq: state attribute of /snapshots/$seq is '$state', expected complete: $(h5dump -A -g "/snapshots/$seq" "$meta" 2>&1 | head -40)"
  [ "$(h5_attr "$meta" / nprocs)" = "$np" ] || fail "snapshot $seq: root attribute nprocs is '$(h5_attr "$meta" / nprocs)', expected $np"
  if [ "$mpid" != 0 ]; then
    [ "$(h5_attr "$meta" / mpirun_pid)" = "$mpid" ] || fail "snapshot $seq: root attribute mpirun_pid is '$(h5_attr "$meta" / mpirun_pid)', expected $mpid"
  fi
  rows=$(h5_rows "$meta" "/snapshots/$seq/ranks")
  n=$(printf '%s\n' "$rows" | grep -c . || true)
  [ "$n" -eq "$np" ] || fail "snapshot $seq: $n rows in /snapshots/$seq/ranks, expected $np: $(h5dump -d "/snapshots/$seq/ranks" "$meta" 2>&1 | head -60)"
  local ranks="" drained=0 pids=""
  while IFS= read -r r; do
    rank=$(field "$r" rank)
    pid=$(field "$r" pid)
    img=$(field "$r" image_path)
    [[ $rank =~ ^[0-9]+$ ]] || fail "snapshot $seq: row without a rank: $r"
    [ "$rank" -eq "$(echo "$ranks" | wc -w)" ] || fail "snapshot $seq: row $(echo "$ranks" | wc -w) holds rank $rank"
    ranks+="$rank "
    if ! [[ $pid =~ ^[1-9][0-9]*$ ]]; then fail "snapshot $seq rank $rank: bad pid '$pid'"; fi
    pids+="$pid "
    if proc_alive "$mpid" && proc_alive "$pid"; then
      [ "$(awk '{ print $4 }' "/proc/$pid/stat")" = "$mpid" ] || fail "snapshot $seq rank $rank: pid $pid is not a child of mpirun $mpid"
    fi
    [ -f "$dir/$seq/opal_snapshot_$rank.ckpt/image.crimg" ] || fail "snapshot $seq rank $rank: no $seq/opal_snapshot_$rank.ckpt/image.crimg in $dir"
    case $img in
      "") fail "snapshot $seq rank $rank: empty image_path" ;;
      /*) [ -e "$img" ] || fail "snapshot $seq rank $rank: image_path $img does not exist" ;;
      *) [ -e "$dir/$img" ] || fail "snapshot $seq rank $rank: image_path $dir/$img does not exist" ;;
    esac
    [[ $(field "$r" bytes_written) =~ ^[1-9][0-9]*$ ]] || fail "snapshot $seq rank $rank: bytes_written '$(field "$r" bytes_written)'"
    local d
    d=$(field "$r" drained_messages)
    [[ $d =~ ^[0-9]+$ ]] || fail "snapshot $seq rank $rank: drained_messages '$d'"
    drained=$((drained + d))
  done <<<"$rows"
  [ "$(tr ' ' '\n' <<<"$ranks" | grep . | sort -n | tr '\n' ' ')" = "$(seq -s ' ' 0 $((np - 1))) " ] ||
    fail "snapshot $seq: ranks are '$ranks', expected 0..$((np - 1)) once each"
  [ "$(tr ' ' '\n' <<<"$pids" | grep . | sort -u | grep -c .)" -eq "$np" ] || fail "snapshot $seq: pids not distinct: $pids"
  DRAINED_TOTAL=$((DRAINED_TOTAL + drained))
  log "snapshot $seq: complete, ranks 0..$((np - 1)), $drained messages drained"
}

# ---------------------------------------------------------------- restart ----

# descendants PID: every process below PID (children first found, depth first)
descendants() {
  local k
  for k in $(pgrep -P "$1" 2>/dev/null || true); do
    echo "$k"
    descendants "$k"
  done
}

# kill_job NAME [PIDS]: kill -9 mpirun (or the ompi-restart that became it) and every
# process below it (or PIDS, listed earlier and maybe killed already), all at once;
# waits until all are gone and mpirun is reaped. The job's stdout then holds what it
# printed before the kill ($T/NAME.rc: mpirun's status).
kill_job() {
  local name=$1 procs=${2:-} pid p waited=0
  pid=$(cat "$T/$name.pid")
  if [ -z "$procs" ]; then
    proc_alive "$pid" || fail "$name: mpirun $pid ended before it was to be killed"
    procs="$pid $(descendants "$pid" | tr '\n' ' ')"
  fi
  # shellcheck disable=SC2086
  kill -9 $procs 2>/dev/null || true
  for p in $procs; do
    while proc_alive "$p"; do
      sleep 0.02
      waited=$((waited + 1))
      [ $waited -lt $((OCR_WAIT_LIMIT * 50)) ] || fail "$name: process $p still alive ${OCR_WAIT_LIMIT}s after kill -9"
    done
  done
  local rc=0
  wait "$pid" 2>/dev/null || rc=$?
  echo "$rc" >"$T/$name.rc"
  # mpirun forwards the ranks' output in chunks: killed, it may lose the end of the last
  # line (down to its newline) that a rank had already written. same_as_concat accepts
  # such a line if it is a prefix of the reference's line there.
  if [ -s "$T/$name.out" ] && [ -n "$(tail -c 1 "$T/$name.out")" ]; then
    log "$name: its last line was cut off by the kill (mpirun died while forwarding it)"
    touch "$T/$name.partial"
  fi
  log "killed $name (kill -9 of mpirun $pid and $(($(wc -w <<<"$procs") - 1)) processes below it) after $(grep -c '' "$T/$name.out") lines"
}

# start_restart NAME GDIR [OMPI-RESTART OPTIONS...]: ompi-restart in the background (it
# becomes the job's mpirun: same PID). $T/NAME.out/.err/.pid/.cmd; sets JOB_PID.
start_restart() {
  local name=$1 gdir=$2
  shift 2
  local cmd=("$BIN/ompi-restart" --mpirun "$MPIRUN" --mpirun_opts --oversubscribe "$@" "$gdir")
  printf '%q ' "${cmd[@]}" >"$T/$name.cmd"
  "${cmd[@]}" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
  JOB_PID=$!
  CRCP_PIDS+=("$JOB_PID")
  echo "$JOB_PID" >"$T/$name.pid"
  log "started $name: ompi-restart pid $JOB_PID: $*${*:+ }$gdir"
}

# finish_gate NAME GATE: like finish_job, but opens the gate file GATE (a restarted job
# waits for the gate of the job it was checkpointed from: the name is in its memory)
finish_gate() {
  local name=$1 gate=$2 pid waited=0
  pid=$(cat "$T/$name.pid")
  touch "$gate"
  while proc_alive "$pid"; do
    sleep 0.05
    waited=$((waited + 1))
    [ $waited -lt $((OCR_WAIT_LIMIT * 20)) ] || fail "$name: mpirun $pid still running ${OCR_WAIT_LIMIT}s after its gate opened (hang?)"
  done
  JOB_RC=0
  wait "$pid" || JOB_RC=$?
  echo "$JOB_RC" >"$T/$name.rc"
}
