#!/usr/bin/env bash
# ompi-restart's job mode without MPI: command line, validation, and refusals.
#
#   restart_cli.sh BIN_DIR APP MAKE_FAKE_JOB_SNAPSHOT CASE
#
# A fake global snapshot of a 2-process "job": two copies of APP (a private copy, $T/app,
# so the test can change it) run under ompi-cr-run, each is checkpointed with
# ompi-checkpoint --pid, the images are placed at
# $G/<seq>/opal_snapshot_<rank>.ckpt/image.crimg and the HDF5 metadata is committed by
# MAKE_FAKE_JOB_SNAPSHOT (tests/support/make_fake_job_snapshot.cpp). ompi-restart always
# gets a fake mpirun (a script that records its PID, cwd, argv and OMPI_* environment into
# $T/mpirun.called): in every refusal that file must not exist (nothing was launched),
# stderr must be one line naming the thing, the exit code 1. Bad cases first check that
# the unmodified snapshot is accepted, so a refusal cannot come from a broken setup.
#
# CASE: showme info exec default_seq choose_seq | missing_dir not_a_snapshot not_hdf5
#       seq_missing seq_incomplete rank_missing rank_corrupt rank_truncated image_path
#       image_swapped program_changed np_mismatch am_ft_enable_cr other_owner bad_quote
#       no_mpirun
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HELPER=${3:?"usage: restart_cli.sh BIN_DIR APP MAKE_FAKE_JOB_SNAPSHOT CASE"}
CASE=${4:?"usage: restart_cli.sh BIN_DIR APP MAKE_FAKE_JOB_SNAPSHOT CASE"}
OCR_TEST_NAME="restart_cli/$CASE"
ocr_init "$1" "$2"
[ -x "$HELPER" ] || fail "$HELPER is missing (not built?)"

# A known environment: no C/R or MCA settings but the ones this test makes.
while read -r v; do
  [ "$v" = OMPI_CR_SNAPSHOT_DIR ] || unset "$v"
done < <(env | grep -oE '^OMPI_(CR|MCA)_[A-Za-z0-9_]*' || true)

APP_ARGS=(--steps 30 --heap-mb 4 --step-ms 30 --exit-code 3)
cp -- "$OCR_APP" "$T/app"
OCR_RUN_APP=$T/app
G=$T/ompi_global_snapshot_4242.ckpt
JOBCWD=$T/jobcwd
mkdir -p "$JOBCWD"
CALLED=$T/mpirun.called
FAKE=$T/fake-mpirun
cat >"$FAKE" <<EOF
#!/bin/bash
{
  echo "pid \$\$"
  echo "cwd \$(pwd)"
  for a in "\$@"; do echo "arg \$a"; done
  env | grep -E '^OMPI_(CR|MCA)_' | sort | sed 's/^/env /'
} >"$CALLED"
exit 7
EOF
chmod +x "$FAKE"
PARAM_FILE=$OCR_BIN/../share/openmpi/amca-param-sets/ft-enable-cr
[ -r "$PARAM_FILE" ] || PARAM_FILE=$OCR_BIN/../share/ompi-cr/ft-enable-cr
[ -r "$PARAM_FILE" ] || fail "no ft-enable-cr parameter file next to $OCR_BIN"

# make_images : two processes of $T/app checkpointed; sets IMG0 IMG1
make_images() {
  start_cr r0 "$T/r0.file" "$T/gate" "${APP_ARGS[@]}"
  local p0=$PID
  start_cr r1 "$T/r1.file" "$T/gate" "${APP_ARGS[@]}"
  local p1=$PID
  wait_step "$T/r0.out" 2 "$p0"
  wait_step "$T/r1.out" 2 "$p1"
  checkpoint c0 "$p0"
  IMG0=$IMAGE
  checkpoint c1 "$p1"
  IMG1=$IMAGE
  kill9 "$p0"
  kill9 "$p1"
}

# place SEQ : copies the images to $G/SEQ/opal_snapshot_{0,1}.ckpt/image.crimg
place() {
  mkdir -p -m 700 "$G" "$G/$1" "$G/$1/opal_snapshot_0.ckpt" "$G/$1/opal_snapshot_1.ckpt"
  cp -- "$IMG0" "$G/$1/opal_snapshot_0.ckpt/image.crimg"
  cp -- "$IMG1" "$G/$1/opal_snapshot_1.ckpt/image.crimg"
}

# commit SEQ [HELPER OPTIONS...] : the metadata record of snapshot SEQ
commit() {
  local seq=$1
  shift
  "$HELPER" "$G" "$seq" 2 --cwd "$JOBCWD" \
    --env OMPI_CR_TEST_VALUE=stored --env OMPI_MCA_btl_tcp_if_include=lo \
    --env OMPI_CR_MPIRUN_PID=1 --env OMPI_MCA_orte_hnp_uri=1.0 \
    --env OMPI_MCA_mca_base_param_file_prefix=ft-enable-cr --env OMPI_MCA_ess=^singleton \
    --env 'OMPI_MCA_mca_base_env_list_internal=LD_PRELOAD=/x/libompi-cr-mpi.so' \
    "$@" -- ./app "${APP_ARGS[@]}" >"$T/commit.out" 2>"$T/commit.err" ||
    fail "make_fake_job_snapshot $seq failed: $(cat "$T/commit.err")"
}

make_snapshot() {
  make_images
  place 0
  commit 0
}

# restart NAME ARGS... : ompi-restart with the fake mpirun; sets RC
restart() {
  local name=$1
  shift
  RC=0
  timeout -k 10 "$OCR_TOOL_TIMEOUT" "$OCR_BIN/ompi-restart" --mpirun "$FAKE" "$@" \
    >"$T/$name.out" 2>"$T/$name.err" </dev/null || RC=$?
  [ $RC -ne 124 ] || fail "ompi-restart $* did not finish within ${OCR_TOOL_TIMEOUT}s"
}

# control : the unmodified snapshot is accepted (--showme, exit 0, nothing launched)
control() {
  restart control --showme "$G"
  [ $RC -eq 0 ] || fail "the unmodified snapshot is refused (exit $RC): $(cat "$T/control.err")"
  [ ! -e "$CALLED" ] || fail "--showme launched mpirun"
  log "control: the unmodified snapshot is accepted"
}

# refused NAME REGEX NAMES ARGS... : a clean refusal, and mpirun was never started
refused() {
  local name=$1 regex=$2 names=$3
  shift 3
  restart "$name" "$@"
  expect_clean_failure "ompi-restart $*" "$name" "$RC" "$regex" "$names"
  [ "$RC" -eq 1 ] || fail "ompi-restart $* exited with $RC, expected 1"
  [ ! -e "$CALLED" ] || fail "ompi-restart $* was refused but ran mpirun: $(cat "$CALLED")"
  [ ! -s "$T/$name.out" ] || fail "ompi-restart $* printed on stdout: $(head -c 500 "$T/$name.out")"
}

# The environment ompi-restart must add, in order (OMPI_CR_MPIRUN_PID comes first).
expected_env() {
  echo "OMPI_CR_TEST_VALUE=stored"
  echo "OMPI_MCA_btl_tcp_if_include=lo"
  sed -e 's/#.*//' "$PARAM_FILE" | awk -F= 'NF >= 2 {
    k = $1; v = substr($0, index($0, "=") + 1)
    gsub(/^[ \t]+|[ \t]+$/, "", k); gsub(/^[ \t]+|[ \t]+$/, "", v)
    if (k != "") print "OMPI_MCA_" k "=" v
  }'
}

case $CASE in
  showme)
    make_snapshot
    printf 'localhost slots=2\n' >"$T/hosts"
    # the user's own btl setting wins over the parameter file; -np 2 is the snapshot's
    restart showme --showme --hostfile "$T/hosts" \
      --mpirun_opts "--oversubscribe -np 2 --mca btl_tcp_if_include 'lo eth0'" "$G"
    [ $RC -eq 0 ] || fail "--showme exited with $RC: $(cat "$T/showme.err")"
    [ ! -e "$CALLED" ] || fail "--showme launched mpirun"
    env_words="OMPI_CR_MPIRUN_PID=PID"
    x_words="-x OMPI_CR_MPIRUN_PID"
    while IFS= read -r e; do
      env_words+=" ${e%%=*}='${e#*=}'"
      x_words+=" -x ${e%%=*}"
    done < <(expected_env)
    # shell_quote leaves plain words unquoted
    env_words=$(sed -E "s/='([A-Za-z0-9_@%+=:,.\/^-]+)'/=\1/g" <<<"$env_words")
    want="cd $JOBCWD && $env_words $FAKE --hostfile $T/hosts --oversubscribe --mca btl_tcp_if_include 'lo eth0' -np 2 $x_words $OCR_BIN/ompi-cr-restore --job $G --seq 0"
    got=$(sed -E 's/OMPI_CR_MPIRUN_PID=[0-9]+/OMPI_CR_MPIRUN_PID=PID/' "$T/showme.out")
    [ "$got" = "$want" ] || fail "--showme printed
  $got
expected
  $want"
    # the user's environment wins: no OMPI_MCA_btl from the file
    OMPI_MCA_btl=self,tcp restart showme_user --showme "$G"
    [ $RC -eq 0 ] || fail "--showme exited with $RC: $(cat "$T/showme_user.err")"
    if grep -qE '(^| )OMPI_MCA_btl=|-x OMPI_MCA_btl( |$)' "$T/showme_user.out"; then
      fail "OMPI_MCA_btl is set by the user but ompi-restart overrides it: $(cat "$T/showme_user.out")"
    fi
    grep -q ' -np 2 ' "$T/showme_user.out" || fail "no -np 2 in $(cat "$T/showme_user.out")"
    log "--showme: $(cat "$T/showme.out")"
    ;;
  info)
    make_snapshot
    restart info -i "$G"
    [ $RC -eq 0 ] || fail "-i exited with $RC: $(cat "$T/info.err")"
    [ ! -e "$CALLED" ] || fail "-i launched mpirun"
    for want in "Global snapshot: $G" "2 ranks" "Command:     ./app ${APP_ARGS[*]}" \
      "MPI library: fake MPI" "Snapshot 0: full" "$G/0/opal_snapshot_0.ckpt/image.crimg" \
      "$G/0/opal_snapshot_1.ckpt/image.crimg" "Restart:     snapshot 0 (the newest complete one"; do
      grep -qF -- "$want" "$T/info.out" || fail "-i output lacks '$want':
$(cat "$T/info.out")"
    done
    log "-i: $(grep -c '' "$T/info.out") lines"
    ;;
  exec)
    # ompi-restart becomes mpirun (same PID), in the job's directory, with the environment
    make_snapshot
    RC=0
    OMPI_CR_MPIRUN=$FAKE "$OCR_BIN/ompi-restart" "$G" >"$T/exec.out" 2>"$T/exec.err" </dev/null &
    pid=$!
    OCR_PIDS+=("$pid")
    wait_exit "$pid"
    [ "$RC" -eq 7 ] || fail "ompi-restart exited with $RC, expected mpirun's 7: $(cat "$T/exec.err")"
    [ -e "$CALLED" ] || fail "mpirun (\$OMPI_CR_MPIRUN) was not run"
    grep -qx "pid $pid" "$CALLED" || fail "mpirun ran as $(grep '^pid' "$CALLED"), not in place of ompi-restart (pid $pid)"
    grep -qx "env OMPI_CR_MPIRUN_PID=$pid" "$CALLED" || fail "OMPI_CR_MPIRUN_PID is not $pid: $(grep MPIRUN_PID "$CALLED")"
    grep -qx "cwd $JOBCWD" "$CALLED" || fail "mpirun runs in $(grep '^cwd' "$CALLED"), not in the job's $JOBCWD"
    while IFS= read -r e; do
      grep -qxF "env $e" "$CALLED" || fail "mpirun's environment lacks $e"
    done < <(expected_env)
    for bad in OMPI_MCA_orte_hnp_uri OMPI_MCA_mca_base_param_file_prefix OMPI_MCA_ess \
      OMPI_MCA_mca_base_env_list_internal; do
      if grep -q "^env $bad=" "$CALLED"; then fail "the old job's launch state $bad reached mpirun"; fi
    done
    args=$(grep '^arg ' "$CALLED" | cut -c5- | tr '\n' ' ')
    want_tail="-np 2 "
    case $args in
      *"$want_tail"*"$OCR_BIN/ompi-cr-restore --job $G --seq 0 ") ;;
      *) fail "mpirun's arguments: $args" ;;
    esac
    case $args in *ft-enable-cr*) fail "mpirun got ft-enable-cr: $args" ;; esac
    log "exec: mpirun ran as pid $pid with: $args"
    ;;
  default_seq | choose_seq)
    make_images
    place 0
    commit 0
    place 1
    commit 1
    place 2 # a leftover without a metadata record
    if [ "$CASE" = default_seq ]; then
      restart showme --showme "$G"
      want="--seq 1"
    else
      restart showme --showme -s 0 "$G"
      want="--seq 0"
    fi
    [ $RC -eq 0 ] || fail "--showme exited with $RC: $(cat "$T/showme.err")"
    case "$(cat "$T/showme.out")" in
      *"--job $G $want") ;;
      *) fail "expected $want: $(cat "$T/showme.out")" ;;
    esac
    log "$CASE: $want"
    ;;
  missing_dir)
    refused missing 'no such file' nope.ckpt "$T/nope.ckpt"
    ;;
  not_a_snapshot)
    mkdir -m 700 "$T/plain.ckpt"
    refused plain 'not an ompi-cr global snapshot' plain.ckpt "$T/plain.ckpt"
    ;;
  not_hdf5)
    make_snapshot
    control
    echo "not an HDF5 file" >"$G/global_snapshot_meta.h5"
    refused not_hdf5 'not an HDF5 file' global_snapshot_meta.h5 "$G"
    ;;
  seq_missing)
    make_snapshot
    control
    refused seq5 'does not exist; the newest complete snapshot is 0' "snapshot 5 of $G" -s 5 "$G"
    ;;
  seq_incomplete)
    make_snapshot
    place 1 # images, but no metadata record: an interrupted checkpoint
    control
    refused seq1 'not complete \(its metadata has no complete record.*the newest complete snapshot is 0' \
      "snapshot 1 of $G" -s 1 "$G"
    ;;
  rank_missing)
    make_snapshot
    control
    rm -- "$G/0/opal_snapshot_1.ckpt/image.crimg"
    refused rank_missing 'no such file' "rank 1 of snapshot 0: image $G/0/opal_snapshot_1.ckpt/image.crimg" "$G"
    ;;
  rank_corrupt)
    make_snapshot
    control
    f=$G/0/opal_snapshot_1.ckpt/image.crimg
    read_header "$f"
    flip_byte "$f" $((DATA_OFF + DATA_SIZE / 2))
    refused rank_corrupt 'checksum|hash|corrupt|mismatch' "rank 1 of snapshot 0: $f" "$G"
    ;;
  rank_truncated)
    make_snapshot
    control
    f=$G/0/opal_snapshot_0.ckpt/image.crimg
    truncate -s $(($(stat -c %s "$f") / 2)) "$f"
    refused rank_truncated 'truncat|too short|short read|end of file|eof|size' "rank 0 of snapshot 0: $f" "$G"
    ;;
  image_path)
    make_images
    place 0
    commit 0 --path 1 0/opal_snapshot_0.ckpt/image.crimg
    refused image_path "is not the expected '0/opal_snapshot_1.ckpt/image.crimg'" "rank 1 of snapshot 0" "$G"
    ;;
  image_swapped)
    make_snapshot
    control
    mv -- "$G/0/opal_snapshot_0.ckpt/image.crimg" "$T/swap"
    mv -- "$G/0/opal_snapshot_1.ckpt/image.crimg" "$G/0/opal_snapshot_0.ckpt/image.crimg"
    mv -- "$T/swap" "$G/0/opal_snapshot_1.ckpt/image.crimg"
    refused swapped 'is not the image the checkpoint wrote' "rank 0 of snapshot 0" "$G"
    ;;
  program_changed)
    make_snapshot
    control
    touch -m -d '+1 hour' "$T/app"
    refused changed 'changed since the checkpoint' "$T/app" "$G"
    ;;
  np_mismatch)
    make_snapshot
    control
    refused np3 'the snapshot has 2 processes; --mpirun_opts asks for 3' "process count" \
      --mpirun_opts "--oversubscribe -np 3" "$G"
    refused n1 'the snapshot has 2 processes; --mpirun_opts asks for 1' "process count" \
      --mpirun_opts "-n 1" "$G"
    ;;
  am_ft_enable_cr)
    make_snapshot
    control
    refused am 'must not be given' "--am ft-enable-cr" --mpirun_opts "--am ft-enable-cr" "$G"
    ;;
  other_owner)
    [ "$(id -u)" -eq 0 ] || skip "needs root to give the snapshot to another user"
    make_snapshot
    control
    chown -R 65534:65534 "$G"
    refused other 'owned by uid 65534' "$G" "$G"
    ;;
  bad_quote)
    make_snapshot
    refused quote 'unterminated single quote' "--mpirun_opts" --mpirun_opts "--mca btl 'self" "$G"
    ;;
  no_mpirun)
    make_snapshot
    control
    RC=0
    timeout -k 10 60 "$OCR_BIN/ompi-restart" --mpirun "$T/no-such-mpirun" "$G" \
      >"$T/nompirun.out" 2>"$T/nompirun.err" </dev/null || RC=$?
    expect_clean_failure "ompi-restart --mpirun $T/no-such-mpirun" nompirun "$RC" 'no such file' no-such-mpirun
    RC=0
    tmo=$(command -v timeout)
    PATH=$T/empty-path "$tmo" -k 10 60 "$OCR_BIN/ompi-restart" "$G" \
      >"$T/nopath.out" 2>"$T/nopath.err" </dev/null || RC=$?
    expect_clean_failure "ompi-restart without mpirun in PATH" nopath "$RC" 'not found in PATH' mpirun
    [ ! -e "$CALLED" ] || fail "mpirun was run"
    ;;
  *)
    fail "unknown case $CASE"
    ;;
esac
