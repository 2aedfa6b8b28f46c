#!/usr/bin/env bash
# Cost of proxy mode after ompi-restart, and restart time against snapshot size (issue 5).
#
#   bench/mpi_restart_bench.sh [--build DIR] [--rounds N] [--samples S] [--np N]
#                              [--apps "CG_ITERS HALO_ITERS"] [--mem-np N] [--mibs "64 256"]
#                              [--no-cold] [--only LIST] [--dir DIR] [--keep]
#
#   --build DIR   build tree (default <repo>/build): bin/ompi-checkpoint, ompi-restart,
#                 ompi-cr-restore, ompi-cr-proxy, lib/openmpi/mca_shmem_ompicr.so,
#                 bench/mpi/*, mpi_tests/programs/{cg,halo2d}
#   --rounds N    rounds (default 3); every round runs each benchmark once as "ob1" (plain
#                 mpirun with ft-enable-cr's MCA parameters, no ompi-cr runtime) and once
#                 as "restarted", in alternating order:
#                   mpirun --am ft-enable-cr ... (started), ompi-checkpoint --term <mpirun
#                   pid> in the program's start phase, ompi-restart --mpirun_opts
#                   "--oversubscribe" <snapshot>: the measured job is the restarted one, whose
#                   ranks talk through their ompi-cr-proxy processes (proxy mode)
#   --samples S   timing samples per size of pingpong/allreduce_lat (default 5)
#   --only LIST   subset of pingpong,allreduce,apps,restart (default all)
#   pingpong, allreduce: started with --hold FILE (bench/mpi/common_bench.h): rank 0 prints
#                 "# ready", the job makes one small Allreduce every 10 ms until FILE
#                 exists; the checkpoint --term is taken there, FILE is created, and the
#                 restarted job measures. ob1 runs get an existing FILE (same code path).
#   apps          cg and halo2d (--np ranks, default 2; iterations from --apps, default
#                 "4000 4000", work 0): checkpoint --term as soon as the first line (printed
#                 after MPI_Init and the first collective) appears, then restart. Every
#                 output line is timestamped as it arrives. Reported: wall time of the
#                 restarted job (ompi-restart start to exit) and of an ob1 run (mpirun start
#                 to exit); and "work": from the first progress line the restarted job
#                 printed (the checkpoint lands within the first 1/16 of the iterations or
#                 soon after) to the "done" line, in both runs: the same iterations. The output after the restart must equal the tail of the ob1 output.
#   restart       mem_hold (--mem-np ranks, default 4) holding each MiB in --mibs (default
#                 "64 256 512"): checkpoint --term, then (cold: sync + drop_caches first,
#                 unless --no-cold) the time from starting ompi-restart until the first
#                 "resumed" line of the last rank reaches this script (each line is
#                 timestamped on arrival; the rank's own clock is only cross-checked); then
#                 `dd if=<image> of=/dev/null bs=1M` of every rank's image in turn, with the
#                 same cache state. Throughput = image bytes / time.
# Medians with min..max over the rounds; the load average is printed before each part.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
BUILD=$REPO/build ROUNDS=3 SAMPLES=5 NP=2 APPS="4000 4000" MEM_NP=4 MIBS="64 256 512" COLD=1
ONLY=pingpong,allreduce,apps,restart DIR="" KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --samples) SAMPLES=$2; shift 2 ;;
    --np) NP=$2; shift 2 ;;
    --apps) APPS=$2; shift 2 ;;
    --mem-np) MEM_NP=$2; shift 2 ;;
    --mibs) MIBS=$2; shift 2 ;;
    --no-cold) COLD=0; shift ;;
    --only) ONLY=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "mpi_restart_bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
BUILD=$(cd "$BUILD" && pwd)
BIN=$BUILD/bin PROGS=$BUILD/mpi_tests/programs BENCH=$BUILD/bench/mpi
COMPONENT_DIR=$BUILD/lib/openmpi PARAM_SET_DIR=$BUILD/share/openmpi/amca-param-sets
for f in "$BIN/ompi-checkpoint" "$BIN/ompi-restart" "$BIN/ompi-cr-restore" "$BIN/ompi-cr-proxy" \
  "$COMPONENT_DIR/mca_shmem_ompicr.so" "$PARAM_SET_DIR/ft-enable-cr" "$BENCH/pingpong" \
  "$BENCH/allreduce_lat" "$BENCH/mem_hold" "$PROGS/cg" "$PROGS/halo2d"; do
  [ -e "$f" ] || { echo "mpi_restart_bench.sh: $f missing" >&2; exit 1; }
done
MPIRUN=$(command -v mpirun) || { echo "mpi_restart_bench.sh: no mpirun" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for v in $(env | sed -n 's/^\(OMPI_MCA_[A-Za-z0-9_]*\)=.*/\1/p; s/^\(OMPI_CR_[A-Za-z0-9_]*\)=.*/\1/p'); do
  unset "$v"
done
unset LD_PRELOAD
if [ -z "$DIR" ]; then DIR=$(mktemp -d "${TMPDIR:-/tmp}/ompi-cr-rstbench.XXXXXX"); fi
mkdir -p "$DIR"
W=$(mktemp -d "${TMPDIR:-/tmp}/ompi-cr-rstbench-work.XXXXXX")
mkdir -p "$W/ctl"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      # shellcheck disable=SC2046
      kill -9 "$p" $(pgrep -P "$p" || true) 2>/dev/null || true
    fi
  done
  if [ $KEEP = 1 ]; then echo "kept $W and $DIR" >&2; else
    rm -rf -- "$W" "$DIR"/ompi_global_snapshot_*
    rmdir "$DIR" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CRENV=(env OMPI_MCA_mca_base_component_path="$COMPONENT_DIR:SYS_DEFAULT:USER_DEFAULT"
  OMPI_MCA_mca_base_param_file_path_force="$PARAM_SET_DIR" OMPI_CR_CONTROL_DIR="$W/ctl"
  OMPI_CR_SNAPSHOT_DIR="$DIR")
AM=("${CRENV[@]}" "$MPIRUN" --am ft-enable-cr --oversubscribe)
RESTART=("${CRENV[@]}" "$BIN/ompi-restart" --mpirun_opts "--oversubscribe")
OB1=(env)
while IFS= read -r line; do
  line=${line%%#*}
  [[ $line =~ ^[[:space:]]*([A-Za-z0-9_]+)[[:space:]]*=[[:space:]]*(.*[^[:space:]])[[:space:]]*$ ]] || continue
  OB1+=("OMPI_MCA_${BASH_REMATCH[1]}=${BASH_REMATCH[2]}")
done <"$PARAM_SET_DIR/ft-enable-cr"
OB1+=("$MPIRUN" --oversubscribe)
wants() { [[ ",$ONLY," == *",$1,"* ]]; }
now() { echo "$EPOCHREALTIME"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
stats() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- - -"; exit }
  m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'; }
fmt() { read -r m lo hi < <(stats); echo "$m ($lo..$hi)"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# stamp: every line of stdin prefixed with the time it arrived
stamp() { local l; while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }
die() { echo "mpi_restart_bench.sh: $*" >&2; exit 1; }

# wait_for FILE REGEX PID SECONDS: until a line of FILE matches, PID alive
wait_for() {
  local i
  for i in $(seq $(($4 * 20))); do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { grep -Eq "$2" "$1" 2>/dev/null && return 0; return 1; }
    sleep 0.05
  done
  return 1
}

# checkpoint_term NAME PID: ompi-checkpoint --term; sets GDIR and SEQ, waits for the job
checkpoint_term() {
  local name=$1 pid=$2 t0 t1 rc=0
  t0=$(now)
  "$BIN/ompi-checkpoint" --term "$pid" >"$W/$name.ckpt.out" 2>"$W/$name.ckpt.err" || rc=$?
  t1=$(now)
  [ $rc = 0 ] || die "ompi-checkpoint --term $pid ($name) failed ($rc): $(cat "$W/$name.ckpt.err")"
  local ref
  ref=$(grep -E '^Snapshot Ref\.: [0-9]+ /' "$W/$name.ckpt.out") || die "no Snapshot Ref. ($name)"
  SEQ=$(awk '{ print $3 }' <<<"$ref")
  GDIR=$(cut -d' ' -f4- <<<"$ref")
  rc=0
  wait "$pid" || rc=$?
  [ $rc = 0 ] || echo "WARNING: $name: the checkpointed job exited with $rc after --term" >&2
  echo "$(sub "$t0" "$t1")" >>"$W/ckpt_term.times"
}

# restart_run NAME: ompi-restart of GDIR, output timestamped into $W/NAME.out; sets RSECS
restart_run() {
  local name=$1 t0 t1 rc
  t0=$(now)
  set +e
  timeout 1800 "${RESTART[@]}" "$GDIR" 2>"$W/$name.err" | stamp >"$W/$name.out"
  rc=${PIPESTATUS[0]}
  set -e
  t1=$(now)
  [ "$rc" = 0 ] || die "$name: ${RESTART[*]} $GDIR exited $rc: $(tail -n 20 "$W/$name.err")"
  RSECS=$(sub "$t0" "$t1")
  echo "$t0" >"$W/$name.t0"
  rm -rf -- "$GDIR"
}

# ob1_run NAME ARGS...: a plain run, output timestamped; sets RSECS
ob1_run() {
  local name=$1 t0 t1 rc
  shift
  t0=$(now)
  set +e
  "${OB1[@]}" "$@" 2>"$W/$name.err" | stamp >"$W/$name.out"
  rc=${PIPESTATUS[0]}
  set -e
  t1=$(now)
  [ "$rc" = 0 ] || die "$name: mpirun $* exited $rc: $(tail -n 20 "$W/$name.err")"
  RSECS=$(sub "$t0" "$t1")
  echo "$t0" >"$W/$name.t0"
}

# held_restart NAME ARGS...: ARGS under --am with --hold, checkpoint --term in the hold,
# restart; the restarted job's output in $W/NAME.out
held_restart() {
  local name=$1 pid
  shift
  rm -f "$W/go"
  "${AM[@]}" "$@" --hold "$W/go" >"$W/$name.pre" 2>"$W/$name.pre.err" &
  pid=$!
  PIDS+=("$pid")
  wait_for "$W/$name.pre" '^# ready' "$pid" 300 || die "$name: no '# ready': $(tail "$W/$name.pre.err")"
  checkpoint_term "$name" "$pid"
  touch "$W/go"
  restart_run "$name"
}

echo "# ompi-cr restart/proxy benchmarks, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores," \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/^Mem:/ { print $2 }') GiB"
echo "# $($MPIRUN --version | head -n1), rounds $ROUNDS, build $BUILD ($(git -C "$REPO" rev-parse --short HEAD)), dir $DIR"
touch "$W/go.always"

# lat_table NAME COLS: per size median (min..max) of column 2 (latency) for ob1 and restarted
lat_table() {
  local name=$1 s o r
  printf '%10s %26s %26s %12s %10s\n' bytes ob1_us restarted_us diff_us ratio
  awk '$2 ~ /^[0-9]+$/ { print $2 }' "$W/$name.ob1.1.out" | while read -r s; do
    o=$(cat "$W/$name.ob1".*.out | awk -v s="$s" '$2 == s { print $3 }' | fmt)
    r=$(cat "$W/$name.rst".*.out | awk -v s="$s" '$2 == s { print $3 }' | fmt)
    printf '%10s %26s %26s %12s %10s\n' "$s" "$o" "$r" \
      "$(awk -v a="${o%% *}" -v b="${r%% *}" 'BEGIN { printf "%+.2f", b - a }')" \
      "$(awk -v a="${o%% *}" -v b="${r%% *}" 'BEGIN { printf "%.2f", b / a }')"
  done
}

for bench in pingpong allreduce; do
  wants "$bench" || continue
  if [ $bench = pingpong ]; then prog=(-np 2 "$BENCH/pingpong"); else prog=(-np "$NP" "$BENCH/allreduce_lat"); fi
  echo
  echo "## $bench (${prog[1]} ranks, $SAMPLES samples per size), load before: $(load)"
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
      ob1_run "$bench.ob1.$r" "${prog[@]}" --hold "$W/go.always" "$SAMPLES"
      held_restart "$bench.rst.$r" "${prog[@]}" "$SAMPLES"
    else
      held_restart "$bench.rst.$r" "${prog[@]}" "$SAMPLES"
      ob1_run "$bench.ob1.$r" "${prog[@]}" --hold "$W/go.always" "$SAMPLES"
    fi
  done
  echo "latency (us; pingpong: one way), median (min..max) over $ROUNDS runs; load after: $(load)"
  lat_table "$bench"
  if [ $bench = pingpong ]; then
    echo "bandwidth (MB/s):"
    awk '$2 ~ /^[0-9]+$/ { print $2 }' "$W/pingpong.ob1.1.out" | while read -r s; do
      printf '%10s %26s %26s\n' "$s" "$(cat "$W"/pingpong.ob1.*.out | awk -v s="$s" '$2 == s { print $4 }' | fmt)" \
        "$(cat "$W"/pingpong.rst.*.out | awk -v s="$s" '$2 == s { print $4 }' | fmt)"
    done
  fi
done

if wants apps; then
  read -r CG_IT HALO_IT <<<"$APPS"
  echo
  echo "## apps ($NP ranks): restarted job vs ob1 run (s), median (min..max) over $ROUNDS rounds, load before: $(load)"
  for app in cg halo2d; do
    if [ $app = cg ]; then it=$CG_IT; else it=$HALO_IT; fi
    for r in $(seq "$ROUNDS"); do
      for kind in $(if [ $((r % 2)) = 1 ]; then echo ob1 rst; else echo rst ob1; fi); do
        name=$app.$kind.$r
        if [ $kind = ob1 ]; then
          ob1_run "$name" -np "$NP" "$PROGS/$app" "$it" 0
        else
          "${AM[@]}" -np "$NP" "$PROGS/$app" "$it" 0 >"$W/$name.pre" 2>"$W/$name.pre.err" &
          pid=$!
          PIDS+=("$pid")
          wait_for "$W/$name.pre" . "$pid" 300 || die "$name: no output: $(tail "$W/$name.pre.err")"
          checkpoint_term "$name" "$pid"
          grep -q ': done$' "$W/$name.pre" && die "$name: the job finished before the checkpoint"
          restart_run "$name"
        fi
        echo "$RSECS" >>"$W/$app.$kind.wall"
      done
      # the restarted job's output is the tail of the whole run's
      cut -d' ' -f2- "$W/$app.rst.$r.out" >"$W/tail.r"
      cut -d' ' -f2- "$W/$app.ob1.$r.out" | tail -n "$(wc -l <"$W/tail.r")" >"$W/tail.o"
      cmp -s "$W/tail.r" "$W/tail.o" || echo "WARNING: $app round $r: restarted output is not the tail of the ob1 output" >&2
      # work: from the first progress line the restarted job printed (its text) to "done",
      # the same lines in both runs
      first=$(cut -d' ' -f2- "$W/$app.rst.$r.out" | grep -E -m1 ' (iter|sweep) [0-9]+' || true)
      for kind in ob1 rst; do
        awk -v f="$first" '{ t = $1; sub(/^[^ ]* /, "") } $0 == f { s = t } / done$/ { e = t }
          END { if (s && e) printf "%.3f\n", e - s }' "$W/$app.$kind.$r.out" >>"$W/$app.$kind.work"
      done
      echo "$app round $r: restarted job printed $(wc -l <"$W/tail.r") of $(wc -l <"$W/$app.ob1.$r.out") lines, work from '$first'" >>"$W/apps.lines"
    done
  done
  printf '%-16s %26s %26s %8s %26s %26s %8s\n' program wall_ob1 wall_restarted ratio work_ob1 work_restarted ratio
  for app in cg halo2d; do
    if [ $app = cg ]; then it=$CG_IT; else it=$HALO_IT; fi
    wo=$(fmt <"$W/$app.ob1.wall") wr=$(fmt <"$W/$app.rst.wall") ko=$(fmt <"$W/$app.ob1.work") kr=$(fmt <"$W/$app.rst.work")
    printf '%-16s %26s %26s %8s %26s %26s %8s\n' "$app $it 0" "$wo" "$wr" \
      "$(awk -v a="${wo%% *}" -v b="${wr%% *}" 'BEGIN { printf "%.2f", b / a }')" "$ko" "$kr" \
      "$(awk -v a="${ko%% *}" -v b="${kr%% *}" 'BEGIN { printf "%.2f", b / a }')"
  done
  cat "$W/apps.lines"
  echo "load after: $(load)"
fi

if wants restart; then
  echo
  echo "## restart time vs snapshot size: $MEM_NP ranks of mem_hold, cold caches: $([ $COLD = 1 ] && echo yes || echo no), load before: $(load)"
  printf '%6s %6s %14s %10s %24s %10s %24s %10s %8s\n' MiB round image_bytes ckpt_s restart_s MB/s dd_s MB/s ratio
  dropc() { if [ $COLD = 1 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi; }
  for mib in $MIBS; do
    for r in $(seq "$ROUNDS"); do
      name=mem.$mib.$r
      rm -f "$W/stop"
      "${AM[@]}" -np "$MEM_NP" "$BENCH/mem_hold" "$mib" "$W/stop" >"$W/$name.pre" 2>"$W/$name.pre.err" &
      pid=$!
      PIDS+=("$pid")
      wait_for "$W/$name.pre" '^mem_hold: ready' "$pid" 600 || die "$name: not ready: $(tail "$W/$name.pre.err")"
      t0=$(now)
      checkpoint_term "$name" "$pid"
      t1=$(now)
      csecs=$(sub "$t0" "$t1")
      images=("$GDIR/$SEQ"/opal_snapshot_*.ckpt/image.crimg)
      bytes=$(cat "${images[@]}" | wc -c)
      dropc
      t0=$(now)
      "${RESTART[@]}" "$GDIR" > >(stamp >"$W/$name.out") 2>"$W/$name.err" &
      rpid=$!
      PIDS+=("$rpid")
      for _ in $(seq 12000); do
        [ "$(awk '$2 == "mem_hold:" && $5 == "resumed" && !seen[$4]++' "$W/$name.out" | wc -l)" -ge "$MEM_NP" ] && break
        kill -0 "$rpid" 2>/dev/null || break
        sleep 0.05
      done
      [ "$(awk '$2 == "mem_hold:" && $5 == "resumed" && !seen[$4]++' "$W/$name.out" | wc -l)" -ge "$MEM_NP" ] ||
        die "$name: ${RESTART[*]} $GDIR: not every rank resumed: $(tail -n 20 "$W/$name.err")"
      # the time each rank's first line after the restart reached this script (the ranks' own
      # CLOCK_REALTIME in that line is kept as a cross-check: skew = rank clock - arrival)
      last=$(awk '$2 == "mem_hold:" && $5 == "resumed" && !seen[$4]++ { print $1 }' "$W/$name.out" | sort -g | tail -n 1)
      awk '$2 == "mem_hold:" && $5 == "resumed" { printf "%.3f\n", $7 - $1 }' "$W/$name.out" >>"$W/clock.skew"
      rsecs=$(sub "$t0" "$last")
      touch "$W/stop"
      rc=0
      wait "$rpid" || rc=$?
      grep -q ' mem_hold: ok$' "$W/$name.out" || echo "WARNING: $name: restarted mem_hold did not end with ok (exit $rc)" >&2
      dropc
      t0=$(now)
      for img in "${images[@]}"; do dd if="$img" of=/dev/null bs=1M status=none; done
      t1=$(now)
      dsecs=$(sub "$t0" "$t1")
      echo "$rsecs" >>"$W/mem.$mib.rst"
      echo "$dsecs" >>"$W/mem.$mib.dd"
      awk -v b="$bytes" -v s="$rsecs" 'BEGIN { printf "%.0f\n", b / s / 1e6 }' >>"$W/mem.$mib.rst.mbs"
      awk -v b="$bytes" -v s="$dsecs" 'BEGIN { printf "%.0f\n", b / s / 1e6 }' >>"$W/mem.$mib.dd.mbs"
      printf '%6s %6s %14s %10s %24s %10.0f %24s %10.0f %8s\n' "$mib" "$r" "$bytes" "$csecs" "$rsecs" \
        "$(awk -v b="$bytes" -v s="$rsecs" 'BEGIN { print b / s / 1e6 }')" "$dsecs" \
        "$(awk -v b="$bytes" -v s="$dsecs" 'BEGIN { print b / s / 1e6 }')" \
        "$(awk -v a="$rsecs" -v b="$dsecs" 'BEGIN { printf "%.2f", b / a }')"
      rm -rf -- "$GDIR"
    done
    echo "median $mib MiB/rank: restart $(fmt <"$W/mem.$mib.rst") s = $(fmt <"$W/mem.$mib.rst.mbs") MB/s;" \
      "dd $(fmt <"$W/mem.$mib.dd") s = $(fmt <"$W/mem.$mib.dd.mbs") MB/s; load $(load)"
  done
fi
echo
[ -s "$W/clock.skew" ] && echo "restarted ranks' CLOCK_REALTIME minus arrival time of their line (s): $(fmt <"$W/clock.skew")"
echo "checkpoint --term times (s): $(fmt <"$W/ckpt_term.times" 2>/dev/null || echo -)"
