#!/usr/bin/env bash
# MPI overhead of running under the C/R runtime, and the latency of a coordinated
# checkpoint (DESIGN.md section 5).
#
#   bench/mpi_bench.sh [--build DIR] [--rounds N] [--np N] [--mib M] [--ckpt-np N]
#                      [--ckpts K] [--dir DIR] [--only LIST] [--quick] [--keep]
#
#   --build DIR   build tree (default: <repo>/build); needs bin/ompi-checkpoint,
#                 lib/openmpi/mca_shmem_ompicr.so, bench/mpi/*, mpi_tests/programs/*
#                 (cmake --build DIR --target mpi_bench_programs crcp_programs
#                  ompi_cr_mca_shmem ompi-checkpoint)
#   --rounds N    runs per mode and benchmark (default 5); the three modes alternate, the
#                 order rotated every round:
#                   plain  mpirun with Open MPI's defaults (may pick UCX etc.)
#                   ob1    mpirun with the MCA parameters of ft-enable-cr (pml ob1, btl
#                          self,vader,tcp, ...) set as OMPI_MCA_*, but no ompi-cr runtime
#                   cr     mpirun --am ft-enable-cr (the same parameters + the runtime)
#                 "overhead" compares cr with ob1: the cost of the runtime alone
#   --np N        ranks for allreduce_lat, cg and halo2d (default 2; pingpong uses 2)
#   --only LIST   comma-separated subset of: pingpong,allreduce,apps,ckpt (default all)
#   --mib M, --ckpt-np N, --ckpts K   checkpoint scenario: N ranks (4) of mem_hold holding
#                 M MiB each (256), K checkpoints in a row (3)
#   --dir DIR     where snapshots and the dd file go (default: a new dir under /tmp)
#   --quick       rounds 2, smaller apps, 64 MiB per rank
#
# Tables:
#   pingpong   per size the median over rounds of the one-way latency (us) and bandwidth
#              (MB/s) in the three modes, overhead of cr over ob1 in %
#   allreduce  per size the median latency (us), the three modes
#   apps       wall time of whole runs of mpi_tests' cg and halo2d (incl. mpirun start-up,
#              which --am makes longer by one re-exec of mpirun)
#   ckpt       time from starting `ompi-checkpoint <mpirun pid>` to its exit after it
#              printed "Snapshot Ref." (the snapshot is committed), the bytes in the
#              snapshot's images and MB/s; then `dd if=/dev/zero bs=1M conv=fsync` of the
#              same number of bytes to the same directory, alternating with the
#              checkpoints; plus the coordination/write/total seconds the snapshot
#              metadata records.
# All times are medians; the machine is shared, so look at the spread (min..max) too.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
BUILD=$REPO/build ROUNDS=5 NP=2 MIB=256 CKPT_NP=4 CKPTS=3 DIR="" ONLY=pingpong,allreduce,apps,ckpt
KEEP=0 QUICK=0
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --np) NP=$2; shift 2 ;;
    --mib) MIB=$2; shift 2 ;;
    --ckpt-np) CKPT_NP=$2; shift 2 ;;
    --ckpts) CKPTS=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --quick) QUICK=1 ROUNDS=2 MIB=64; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "mpi_bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
BUILD=$(cd "$BUILD" && pwd)
BIN=$BUILD/bin PROGS=$BUILD/mpi_tests/programs BENCH=$BUILD/bench/mpi
COMPONENT_DIR=$BUILD/lib/openmpi PARAM_SET_DIR=$BUILD/share/openmpi/amca-param-sets
for f in "$BIN/ompi-checkpoint" "$COMPONENT_DIR/mca_shmem_ompicr.so" "$PARAM_SET_DIR/ft-enable-cr" \
  "$BENCH/pingpong" "$BENCH/allreduce_lat" "$BENCH/mem_hold" "$PROGS/cg" "$PROGS/halo2d"; do
  [ -e "$f" ] || { echo "mpi_bench.sh: $f missing (build the targets named in --help)" >&2; exit 1; }
done
MPIRUN=$(command -v mpirun) || { echo "mpi_bench.sh: no mpirun" >&2; exit 1; }

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for v in $(env | sed -n 's/^\(OMPI_MCA_[A-Za-z0-9_]*\)=.*/\1/p; s/^\(OMPI_CR_[A-Za-z0-9_]*\)=.*/\1/p'); do
  unset "$v"
done
unset LD_PRELOAD
if [ -z "$DIR" ]; then DIR=$(mktemp -d "${TMPDIR:-/tmp}/ompi-cr-mpibench.XXXXXX"); fi
mkdir -p "$DIR"
W=$(mktemp -d "${TMPDIR:-/tmp}/ompi-cr-mpibench-work.XXXXXX")
JOB=""
cleanup() {
  if [ -n "$JOB" ] && kill -0 "$JOB" 2>/dev/null; then
    kill -TERM "$JOB" 2>/dev/null || true
    sleep 2
    # shellcheck disable=SC2046
    kill -9 "$JOB" $(pgrep -P "$JOB" || true) 2>/dev/null || true
  fi
  if [ $KEEP = 1 ]; then echo "kept $W and $DIR" >&2; else rm -rf -- "$W" "$DIR"/ompi_global_snapshot_* "$DIR/dd.out"; rmdir "$DIR" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

AM=(env OMPI_MCA_mca_base_component_path="$COMPONENT_DIR:SYS_DEFAULT:USER_DEFAULT"
  OMPI_MCA_mca_base_param_file_path_force="$PARAM_SET_DIR" OMPI_CR_CONTROL_DIR="$W/ctl"
  OMPI_CR_SNAPSHOT_DIR="$DIR" "$MPIRUN" --am ft-enable-cr)
PLAIN=("$MPIRUN")
# ob1: ft-enable-cr's parameters ("name = value" lines) as OMPI_MCA_* for a plain mpirun
OB1=(env)
while IFS= read -r line; do
  line=${line%%#*}
  [[ $line =~ ^[[:space:]]*([A-Za-z0-9_]+)[[:space:]]*=[[:space:]]*(.*[^[:space:]])[[:space:]]*$ ]] || continue
  OB1+=("OMPI_MCA_${BASH_REMATCH[1]}=${BASH_REMATCH[2]}")
done <"$PARAM_SET_DIR/ft-enable-cr"
OB1+=("$MPIRUN")
MODES=(plain ob1 cr)
mkdir -p "$W/ctl"
wants() { [[ ",$ONLY," == *",$1,"* ]]; }
now() { echo "$EPOCHREALTIME"; }

# median / min / max of the numbers on stdin
stats() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- - -"; exit }
  m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 == 0) print "-"; else printf "%+.1f%%", (b - a) / a * 100 }'; }

# run_mode MODE OUT ARGS...: one mpirun, stdout to OUT
run_mode() {
  local mode=$1 out=$2
  shift 2
  case $mode in
    plain) "${PLAIN[@]}" --oversubscribe "$@" >"$out" 2>"$out.err" ;;
    ob1) "${OB1[@]}" --oversubscribe "$@" >"$out" 2>"$out.err" ;;
    cr) "${AM[@]}" --oversubscribe "$@" >"$out" 2>"$out.err" ;;
  esac
}

# order R: the modes in the order of round R (rotated)
order() {
  local r=$1 i
  for i in 0 1 2; do echo "${MODES[$(((r + i) % 3))]}"; done
}

# alternate NAME ARGS...: ROUNDS runs per mode, alternating; outputs in $W/NAME.<mode>.<round>
alternate() {
  local name=$1 r mode
  shift
  for r in $(seq "$ROUNDS"); do
    for mode in $(order "$r"); do run_mode "$mode" "$W/$name.$mode.$r" "$@"; done
  done
}

# column NAME MODE SIZE COL: the values of column COL for SIZE over all rounds
column() { cat "$W/$1.$2".* | awk -v s="$3" -v c="$4" '$1 == s { print $c }'; }

echo "# ompi-cr MPI benchmarks, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $($MPIRUN --version | head -n1), rounds $ROUNDS, build $BUILD, snapshot dir $DIR"

if wants pingpong; then
  alternate pingpong -np 2 "$BENCH/pingpong"
  echo
  echo "## pingpong (2 ranks): one-way latency (us) and bandwidth (MB/s), median over $ROUNDS runs"
  printf '%10s %10s %10s %10s %9s %10s %10s %10s %9s\n' bytes lat_plain lat_ob1 lat_cr overhead bw_plain bw_ob1 bw_cr overhead
  awk '!/^#/ { print $1 }' "$W/pingpong.plain.1" | while read -r s; do
    lp=$(column pingpong plain "$s" 2 | stats | cut -d' ' -f1)
    lo=$(column pingpong ob1 "$s" 2 | stats | cut -d' ' -f1)
    lc=$(column pingpong cr "$s" 2 | stats | cut -d' ' -f1)
    bp=$(column pingpong plain "$s" 3 | stats | cut -d' ' -f1)
    bo=$(column pingpong ob1 "$s" 3 | stats | cut -d' ' -f1)
    bc=$(column pingpong cr "$s" 3 | stats | cut -d' ' -f1)
    printf '%10s %10s %10s %10s %9s %10s %10s %10s %9s\n' "$s" "$lp" "$lo" "$lc" "$(pct "$lo" "$lc")" \
      "$bp" "$bo" "$bc" "$(pct "$bo" "$bc")"
  done
fi

if wants allreduce; then
  alternate allreduce -np "$NP" "$BENCH/allreduce_lat"
  echo
  echo "## allreduce_lat ($NP ranks): latency (us), median over $ROUNDS runs"
  printf '%10s %12s %12s %12s %9s\n' bytes plain ob1 cr overhead
  awk '!/^#/ { print $1 }' "$W/allreduce.plain.1" | while read -r s; do
    p=$(column allreduce plain "$s" 2 | stats | cut -d' ' -f1)
    o=$(column allreduce ob1 "$s" 2 | stats | cut -d' ' -f1)
    c=$(column allreduce cr "$s" 2 | stats | cut -d' ' -f1)
    printf '%10s %12s %12s %12s %9s\n' "$s" "$p" "$o" "$c" "$(pct "$o" "$c")"
  done
fi

if wants apps; then
  # whole runs, timed around mpirun; the output of both modes must be the same
  if [ $QUICK = 1 ]; then CG=(4000 0) HALO=(8000 0); else CG=(20000 0) HALO=(40000 0); fi
  echo
  echo "## apps ($NP ranks): wall time of a whole run (s), median (min..max) over $ROUNDS runs"
  printf '%-18s %22s %22s %22s %9s\n' program plain ob1 cr overhead
  for app in cg halo2d; do
    if [ $app = cg ]; then args=("${CG[@]}"); else args=("${HALO[@]}"); fi
    for r in $(seq "$ROUNDS"); do
      for mode in $(order "$r"); do
        t0=$(now)
        run_mode "$mode" "$W/$app.$mode.$r" -np "$NP" "$PROGS/$app" "${args[@]}"
        t1=$(now)
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >>"$W/$app.$mode.times"
      done
      for mode in plain ob1; do
        cmp -s "$W/$app.$mode.$r" "$W/$app.cr.$r" || echo "WARNING: $app output differs between $mode and cr (round $r)" >&2
      done
    done
    read -r pm pmin pmax < <(stats <"$W/$app.plain.times")
    read -r om omin omax < <(stats <"$W/$app.ob1.times")
    read -r cm cmin cmax < <(stats <"$W/$app.cr.times")
    printf '%-18s %22s %22s %22s %9s\n' "$app ${args[*]}" "$pm ($pmin..$pmax)" "$om ($omin..$omax)" \
      "$cm ($cmin..$cmax)" "$(pct "$om" "$cm")"
  done
fi

# h5_attr FILE GROUP NAME: a scalar attribute of the snapshot metadata
h5_attr() {
  h5dump -A -g "$2" "$1" 2>/dev/null | awk -v want="$3" '
    $1 == "ATTRIBUTE" { inattr = ($2 == "\"" want "\""); next }
    inattr && /^ *\(0\): / { sub(/^ *\(0\): /, ""); gsub(/^"|"$/, ""); print; exit }'
}

if wants ckpt; then
  echo
  echo "## checkpoint latency: $CKPT_NP ranks x $MIB MiB (mem_hold), $CKPTS checkpoints, dd of the same bytes in between"
  rm -f "$W/stop"
  "${AM[@]}" --oversubscribe -np "$CKPT_NP" "$BENCH/mem_hold" "$MIB" "$W/stop" >"$W/mem_hold.out" 2>"$W/mem_hold.err" &
  JOB=$!
  for _ in $(seq 6000); do
    grep -q '^mem_hold: ready' "$W/mem_hold.out" && break
    kill -0 "$JOB" 2>/dev/null || { cat "$W/mem_hold.err" >&2; echo "mem_hold ended early" >&2; exit 1; }
    sleep 0.05
  done
  grep -q '^mem_hold: ready' "$W/mem_hold.out" || { echo "mem_hold not ready after 300 s" >&2; exit 1; }
  printf '%-12s %6s %14s %10s %10s %12s %10s %10s\n' run seq bytes seconds MB/s coord_s write_s total_s
  for k in $(seq "$CKPTS"); do
    sync
    t0=$(now)
    if ! "$BIN/ompi-checkpoint" "$JOB" >"$W/ckpt$k.out" 2>"$W/ckpt$k.err"; then
      echo "ompi-checkpoint failed: $(cat "$W/ckpt$k.err")" >&2
      exit 1
    fi
    t1=$(now)
    ref=$(grep -E '^Snapshot Ref\.: [0-9]+ /' "$W/ckpt$k.out") || { echo "no Snapshot Ref. line: $(cat "$W/ckpt$k.out")" >&2; exit 1; }
    seq=$(awk '{ print $3 }' <<<"$ref")
    gdir=$(cut -d' ' -f4- <<<"$ref")
    bytes=$(du -sb "$gdir/$seq" | cut -f1)
    meta=$gdir/global_snapshot_meta.h5
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    printf '%-12s %6s %14s %10s %10.0f %12s %10s %10s\n' checkpoint "$seq" "$bytes" "$secs" \
      "$(awk -v b="$bytes" -v s="$secs" 'BEGIN { print b / s / 1e6 }')" \
      "$(h5_attr "$meta" "/snapshots/$seq" coordination_seconds)" \
      "$(h5_attr "$meta" "/snapshots/$seq" write_seconds)" "$(h5_attr "$meta" "/snapshots/$seq" total_seconds)"
    echo "$secs" >>"$W/ckpt.times"
    # the same bytes with dd, same directory
    count=$(((bytes + 1048575) / 1048576))
    rm -f "$DIR/dd.out"
    sync
    t0=$(now)
    dd if=/dev/zero of="$DIR/dd.out" bs=1M count="$count" conv=fsync status=none
    t1=$(now)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    printf '%-12s %6s %14s %10s %10.0f\n' dd - "$((count * 1048576))" "$secs" \
      "$(awk -v b="$((count * 1048576))" -v s="$secs" 'BEGIN { print b / s / 1e6 }')"
    echo "$secs" >>"$W/dd.times"
    rm -f "$DIR/dd.out"
    [ "$k" = "$CKPTS" ] || rm -rf -- "${gdir:?}/$seq"  # keep the disk use bounded (metadata stays)
  done
  touch "$W/stop"
  rc=0
  wait "$JOB" || rc=$?
  JOB=""
  grep -q '^mem_hold: ok' "$W/mem_hold.out" || echo "WARNING: mem_hold did not end with 'ok' (exit $rc): $(tail -n 3 "$W/mem_hold.out" "$W/mem_hold.err")" >&2
  read -r cm cmin cmax < <(stats <"$W/ckpt.times")
  read -r dm dmin dmax < <(stats <"$W/dd.times")
  echo "median: checkpoint $cm s ($cmin..$cmax), dd $dm s ($dmin..$dmax), checkpoint/dd $(awk -v a="$cm" -v b="$dm" 'BEGIN { printf "%.2f", a / b }')"
fi
