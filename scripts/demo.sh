#!/usr/bin/env bash
# Demonstration of ompi-cr on an MPI job: a conjugate-gradient solver runs on 3 ranks under
# `mpirun --am ft-enable-cr`, is checkpointed from outside with `ompi-checkpoint <PID of
# mpirun>`, the whole job is killed with kill -9, and `ompi-restart` resumes it from the
# snapshot. The output of the killed job followed by that of the restarted job must be
# byte for byte the output of an uninterrupted run.
#
#   ./scripts/demo.sh            (from any directory; installs packages and builds if needed)
#
# Environment: OMPI_CR_BUILD_DIR (default <repo>/build), OMPI_CR_DEMO_NO_BUILD=1 to use an
# existing build as is, DEMO_NP / DEMO_ITERS / DEMO_WORK to vary the run.
# Nothing is installed into the system's Open MPI: mpirun is pointed at the build tree's
# launcher component and parameter set (the two OMPI_MCA_ variables printed below).
# Exit code 0 when the outputs are identical, 1 otherwise. The single-process demo is
# scripts/demo_process.sh.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${OMPI_CR_BUILD_DIR:-$root/build}
bin=$build/bin
np=${DEMO_NP:-3}
iters=${DEMO_ITERS:-3000}
work=${DEMO_WORK:-150}

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
say() { printf '%s\n' "$*"; }
cmdline() { printf '  $ %s\n' "$*"; }
indent() { sed 's/^/    /'; }
die() {
  printf '\n\033[1;31mFAILED: %s\033[0m\n' "$*" >&2
  exit 1
}

tmp=$(mktemp -d /tmp/ompi-cr-demo.XXXXXX)
chmod 700 "$tmp"
job=""
cleanup() {
  if [ -n "$job" ] && kill -0 "$job" 2>/dev/null; then kill -9 "$job" 2>/dev/null || true; fi
  rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${OMPI_CR_DEMO_NO_BUILD:-0}" != 1 ]; then
  bold "Building ompi-cr in $build (log: $tmp/build.log)"
  if ! OMPI_CR_BUILD_DIR=$build bash "$root/scripts/build.sh" >"$tmp/build.log" 2>&1; then
    tail -n 40 "$tmp/build.log" >&2
    die "the build failed"
  fi
  say "  done"
fi
app=$build/mpi_tests/programs/cg
for t in "$bin/ompi-checkpoint" "$bin/ompi-restart" "$bin/ompi-cr-info" "$app" \
  "$build/lib/openmpi/mca_shmem_ompicr.so"; do
  [ -e "$t" ] || die "$t is missing"
done
command -v mpirun >/dev/null || die "mpirun is not installed (scripts/setup.sh installs it)"
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_CR_SNAPSHOT_DIR=$tmp/snapshots
mkdir -m 700 "$OMPI_CR_SNAPSHOT_DIR"
# This machine may have fewer cores than ranks.
mpirun_opts=(--oversubscribe)

bold "1. The MPI program, uninterrupted (reference)"
say "  cg: conjugate gradient on a distributed 1-D Laplacian; neighbour exchange with"
say "  MPI_Sendrecv, dot products with MPI_Allreduce; prints residuals (%.15e) as it goes."
cmdline "mpirun ${mpirun_opts[*]} -np $np cg $iters $work > reference.out"
mpirun "${mpirun_opts[@]}" -np "$np" "$app" "$iters" "$work" >"$tmp/reference.out" 2>"$tmp/reference.err" ||
  die "the reference run failed: $(head -n 5 "$tmp/reference.err")"
head -n 2 "$tmp/reference.out" | indent
say "    ..."
tail -n 2 "$tmp/reference.out" | indent
total=$(wc -l <"$tmp/reference.out")

bold "2. The same job with checkpoint/restart enabled"
export OMPI_MCA_mca_base_component_path="$build/lib/openmpi:SYS_DEFAULT:USER_DEFAULT"
export OMPI_MCA_mca_base_param_file_path_force="$build/share/openmpi/amca-param-sets"
say "  (using the build tree's launcher component and ft-enable-cr parameter set:"
say "   OMPI_MCA_mca_base_component_path=$OMPI_MCA_mca_base_component_path"
say "   OMPI_MCA_mca_base_param_file_path_force=$OMPI_MCA_mca_base_param_file_path_force)"
cmdline "mpirun ${mpirun_opts[*]} --am ft-enable-cr -np $np cg $iters $work > job.out &"
mpirun "${mpirun_opts[@]}" --am ft-enable-cr -np "$np" "$app" "$iters" "$work" \
  >"$tmp/job.out" 2>"$tmp/job.err" </dev/null &
job=$!
say "  mpirun has PID $job"
wait_lines() {  # wait until job.out has $1 lines
  local n=0
  until [ "$(wc -l <"$tmp/job.out")" -ge "$1" ]; do
    kill -0 "$job" 2>/dev/null || die "the job ended early: $(head -n 5 "$tmp/job.err")"
    sleep 0.05
    n=$((n + 1))
    [ $n -lt 4800 ] || die "the job printed fewer than $1 lines in 240 s"
  done
}
wait_lines $((total / 3))

bold "3. Checkpoint the running job from outside"
cmdline "ompi-checkpoint -s $job"
rc=0
"$bin/ompi-checkpoint" -s "$job" >"$tmp/ckpt.out" 2>&1 </dev/null || rc=$?
indent <"$tmp/ckpt.out"
[ $rc -eq 0 ] || die "ompi-checkpoint exited with $rc"
snapshot=$(awk '/^Snapshot Ref\.:/ {print $4}' "$tmp/ckpt.out")
[ -n "$snapshot" ] && [ -d "$snapshot" ] || die "no snapshot directory in the output"
say "  the job keeps running; what the snapshot holds:"
cmdline "ompi-cr-info $snapshot"
"$bin/ompi-cr-info" "$snapshot" 2>&1 | head -n 24 | indent

bold "4. Kill the whole job (kill -9 mpirun, which takes its ranks with it)"
cmdline "kill -9 $job"
kill -9 "$job"
wait "$job" 2>/dev/null || true
job=""
sleep 0.5
say "  the killed job had printed $(wc -l <"$tmp/job.out") of $total lines:"
tail -n 2 "$tmp/job.out" | indent

bold "5. Restart the job from its snapshot"
cmdline "ompi-restart --mpirun_opts \"${mpirun_opts[*]}\" $snapshot >> job.out"
unset OMPI_MCA_mca_base_component_path OMPI_MCA_mca_base_param_file_path_force
cp "$tmp/job.out" "$tmp/killed.out"
rc=0
"$bin/ompi-restart" --mpirun_opts "${mpirun_opts[*]}" "$snapshot" >>"$tmp/job.out" \
  2>"$tmp/restart.err" </dev/null || rc=$?
[ $rc -eq 0 ] || die "ompi-restart exited with $rc: $(head -n 5 "$tmp/restart.err")"
say "  the restarted job printed $(($(wc -l <"$tmp/job.out") - $(wc -l <"$tmp/killed.out"))) more lines, ending with:"
tail -n 2 "$tmp/job.out" | indent

bold "6. Compare with the uninterrupted run"
# The restarted job resumes at the checkpoint, so it prints again what the killed job
# printed between the checkpoint and the kill. The check: the restarted job's output is
# exactly the reference from some line k+1 on, and the killed job printed the reference's
# first k lines (at least) before it died.
restarted=$(($(wc -l <"$tmp/job.out") - $(wc -l <"$tmp/killed.out")))
k=$((total - restarted))
tail -n "$restarted" "$tmp/job.out" >"$tmp/restarted.out"
head -n "$k" "$tmp/killed.out" >"$tmp/combined.out"
cat "$tmp/restarted.out" >>"$tmp/combined.out"
say "  the checkpoint was taken after line $k; the killed job had printed $(wc -l <"$tmp/killed.out") lines"
cmdline "cmp reference.out <(first $k lines of the killed job; the restarted job)"
if [ "$k" -ge 0 ] && [ "$k" -le "$(wc -l <"$tmp/killed.out")" ] && cmp "$tmp/reference.out" "$tmp/combined.out"; then
  printf '\n\033[1;32mIDENTICAL: %s lines, byte for byte\033[0m\n' "$total"
else
  diff "$tmp/reference.out" "$tmp/combined.out" | head -n 10 | indent
  die "the outputs differ"
fi
