#!/usr/bin/env bash
# Demonstration: checkpoint a running program, kill it, restart it from its image, and
# show that the result is exactly that of an uninterrupted run.
#
#   ./scripts/demo.sh            (from any directory; builds first if needed)
#
# Environment: OMPI_CR_BUILD_DIR (default <repo>/build), OMPI_CR_DEMO_NO_BUILD=1 to use
# an existing build as is, DEMO_STEPS / DEMO_HEAP_MB / DEMO_CHECKPOINT_STEP to vary the run.
# Exit code 0 when the outputs are identical, 1 otherwise.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${OMPI_CR_BUILD_DIR:-$root/build}
bin=$build/bin
steps=${DEMO_STEPS:-60}
heap_mb=${DEMO_HEAP_MB:-256}
ck_step=${DEMO_CHECKPOINT_STEP:-25}
app_args=(--steps "$steps" --heap-mb "$heap_mb" --step-ms 50)

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
say() { printf '%s\n' "$*"; }
cmdline() { printf '  $ %s\n' "$*"; }
indent() { sed 's/^/    /'; }
die() {
  printf '\n\033[1;31mFAILED: %s\033[0m\n' "$*" >&2
  exit 1
}

tmp=$(mktemp -d /tmp/ompi-cr-demo.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
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
for t in ompi-cr-run ompi-checkpoint ompi-restart ompi-cr-info stateful_app; do
  [ -x "$bin/$t" ] || die "$bin/$t is missing"
done
app=$bin/stateful_app
export OMPI_CR_SNAPSHOT_DIR=$tmp/snapshots

bold "1. The test program, uninterrupted"
say "  stateful_app keeps ${heap_mb} MiB of heap, a 32 MiB static array, a 20000-frame deep"
say "  recursion, libc and FPU/AVX state and two output files, and prints a digest of all"
say "  of it after every step."
cmdline "stateful_app ${app_args[*]} --outfile ref.file"
ref_rc=0
"$app" "${app_args[@]}" --outfile "$tmp/ref.file" >"$tmp/ref.out" || ref_rc=$?
head -n 2 "$tmp/ref.out" | indent
say "    ..."
tail -n 2 "$tmp/ref.out" | indent

bold "2. The same program under ompi-cr-run, checkpointed after step $ck_step"
cmdline "ompi-cr-run -- stateful_app ${app_args[*]} --outfile run.file &"
"$bin/ompi-cr-run" -- "$app" "${app_args[@]}" --outfile "$tmp/run.file" --gate "$tmp/gate" \
  >"$tmp/run.out" 2>"$tmp/run.err" </dev/null &
pid=$!
n=0
until grep -q "^step $ck_step digest " "$tmp/run.out" 2>/dev/null; do
  kill -0 "$pid" 2>/dev/null || die "the program ended early: $(cat "$tmp/run.err")"
  sleep 0.02
  n=$((n + 1))
  [ $n -lt 12000 ] || die "no step $ck_step after 240 s"
done
say "  pid $pid has printed step $ck_step"
mkdir -p "$tmp/snapshots"
cmdline "ompi-checkpoint -v --pid $pid --snapshot-dir $tmp/snapshots"
rc=0
"$bin/ompi-checkpoint" -v --pid "$pid" --snapshot-dir "$tmp/snapshots" >"$tmp/ckpt.out" 2>"$tmp/ckpt.err" </dev/null || rc=$?
cat "$tmp/ckpt.err" "$tmp/ckpt.out" | indent
[ $rc -eq 0 ] || die "ompi-checkpoint exited with $rc"
image=$(tail -n 1 "$tmp/ckpt.out")
case $image in
  "Image: /"*) image=${image#Image: } ;;
  *) die "ompi-checkpoint printed no 'Image:' line" ;;
esac

bold "3. Kill the program (kill -9)"
cmdline "kill -9 $pid"
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=""
say "  it had printed $(grep -c '^step ' "$tmp/run.out") of $steps steps; last: $(tail -n 1 "$tmp/run.out")"

bold "4. The image"
cmdline "ompi-cr-info $image"
"$bin/ompi-cr-info" "$image" 2>&1 | sed -n "1,/^Regions/p" | indent || true

bold "5. Restart from the image"
touch "$tmp/gate"
cmdline "ompi-restart --image $image"
rc=0
"$bin/ompi-restart" --image "$image" >"$tmp/restored.out" 2>"$tmp/restored.err" </dev/null || rc=$?
head -n 2 "$tmp/restored.out" | indent
say "    ..."
tail -n 2 "$tmp/restored.out" | indent
[ -s "$tmp/restored.err" ] && { say "  stderr:"; head -n 20 "$tmp/restored.err" | indent; }
say "  exit code $rc (uninterrupted run: $ref_rc)"

bold "6. Verdict"
la=$(stat -c %s "$tmp/ref.out")
lr=$(stat -c %s "$tmp/restored.out")
why=""
if [ "$lr" -eq 0 ]; then
  why="the restored run printed nothing"
elif [ "$lr" -gt "$la" ] || ! tail -c "$lr" "$tmp/ref.out" | cmp -s - "$tmp/restored.out"; then
  why="the restored run's output is not the continuation of the uninterrupted run"
elif ! cmp -s -n $((la - lr)) "$tmp/ref.out" "$tmp/run.out" || [ "$(stat -c %s "$tmp/run.out")" -lt $((la - lr)) ]; then
  why="the killed run's output does not match the uninterrupted run before the checkpoint"
elif [ "$rc" -ne "$ref_rc" ]; then
  why="exit code $rc, expected $ref_rc"
elif ! cmp -s "$tmp/ref.file" "$tmp/run.file" || ! cmp -s "$tmp/ref.file.stdio" "$tmp/run.file.stdio"; then
  why="the program's output files differ"
fi
{
  head -c $((la - lr)) "$tmp/run.out"
  cat "$tmp/restored.out"
} >"$tmp/stitched.out"
if [ -n "$why" ] || ! cmp -s "$tmp/stitched.out" "$tmp/ref.out"; then
  diff "$tmp/ref.out" "$tmp/stitched.out" | head -n 20 | indent || true
  die "DIFFERENT: ${why:-the stitched output differs}"
fi
lines=$(grep -c '' "$tmp/ref.out")
first=$(head -n 1 "$tmp/restored.out" | cut -d' ' -f2)
sha=$(sha256sum "$tmp/ref.out" | cut -d' ' -f1)
say "  before the checkpoint: steps 1..$((first - 1)) from the original process (killed)"
say "  after the restart:     steps $first..$steps and the final digest from the restored process"
say "  output files:          identical ($(stat -c %s "$tmp/ref.file") + $(stat -c %s "$tmp/ref.file.stdio") bytes)"
printf '\n\033[1;32mIDENTICAL: the restored run'"'"'s output matches the uninterrupted run (%s lines, sha256 %s)\033[0m\n' "$lines" "$sha"
