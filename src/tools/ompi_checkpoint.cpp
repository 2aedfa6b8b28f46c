// ompi-checkpoint: asks for a checkpoint and waits for the outcome, in one of two modes.
//
//   ompi-checkpoint [options] PID_OF_MPIRUN   a whole MPI job started with
//                                             `mpirun --am ft-enable-cr` (checkpoint_job.cpp):
//                                             prints "Snapshot Ref.: <seq> <global snapshot dir>"
//   ompi-checkpoint --pid PID [options]       one process started with ompi-cr-run (below):
//                                             prints "Image: <image path>"
//
// A positional PID is classified first (an mpirun of a C/R job, else a process with an
// ompi-cr agent), and the target is checked (exists, is ours, really runs the runtime) so
// that the trigger signal, whose default action may be to kill, is never sent to a
// process that would not understand it.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "build_config.h"
#include "crs/skip_reasons.h"
#include "snapc/control_channel.h"
#include "tools/checkpoint_common.h"
#include "tools/tool_paths.h"

namespace ocr::tools::checkpoint {

namespace {

// ompi-restart (ompi-cr-restore) usually restores the program in a child that has the
// program's old PID and stays behind as its waiting parent; its own PID is the one users
// know ($!). Returns that child when `pid` is such a waiter, else `pid`.
int follow_restorer(int pid) {
  char exe[4096];
  std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = readlink(link.c_str(), exe, sizeof exe - 1);
  if (n <= 0) return pid;
  exe[n] = 0;
  std::string name = exe;
  name = name.substr(name.rfind('/') + 1);
  if (name != "ompi-cr-restore") return pid;
  std::ifstream children("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) +
                         "/children");
  int child = 0, extra = 0;
  if (!(children >> child) || (children >> extra)) return pid;
  return child;
}

}  // namespace

// One process started with ompi-cr-run (or with the runtime preloaded by hand).
int checkpoint_process(const Options& opt) {
  const int pid = follow_restorer(opt.pid);
  const std::string proc = "process " + std::to_string(pid);
  const char state = ocr::process_state(pid);
  if (state == 0) fail(proc + " does not exist");
  if (state == 'Z' || state == 'X') fail(proc + " has already exited");
  unsigned ruid = 0, euid = 0;
  if (!process_uids(pid, &ruid, &euid)) fail(proc + " does not exist");
  const unsigned me = getuid();
  if (me != 0 && ruid != me && euid != me)
    fail(describe(pid) + " belongs to uid " + std::to_string(ruid) + ", not to you (uid " +
         std::to_string(me) + ")");

  adopt_control_dir_of(pid);
  const std::string not_ours =
      describe(pid) + " is not running under ompi-cr (start it with ompi-cr-run)";
  ocr::AgentInfo agent;
  std::string err;
  // The agent registers from its own thread: just after start-up, and after a restore
  // (where the application threads run again first, and a process restored with its old
  // PID finds the killed original's agent file there), a process that maps the runtime
  // may not be registered yet. Give it a moment before calling it foreign.
  const bool runtime_mapped = maps_runtime_library(pid);
  for (int tries = 0;; tries++) {
    err.clear();
    const bool ok = ocr::read_agent_info(pid, &agent, &err, euid);
    const bool missing = !ok && err.find("No such file or directory") != std::string::npos;
    if (!ok && !missing) fail("cannot talk to " + describe(pid) + ": " + err);
    if (ok && agent.start_time == ocr::process_start_time(pid)) break;
    if (!runtime_mapped || tries >= 500 || ocr::process_state(pid) == 0) fail(not_ours);
    timespec ts{0, 10 * 1000 * 1000};  // up to 5 s in all
    nanosleep(&ts, nullptr);
  }
  if (!maps_runtime_library(pid)) fail(not_ours);

  ocr::CheckpointRequest req;
  req.id = random_id();
  req.term = opt.term;
  req.verbose = opt.verbose;
  req.kind = opt.incremental ? "incremental" : "full";
  if (!opt.snapshot_dir.empty()) req.snapshot_dir = ocr::tools::absolute_path(opt.snapshot_dir);

  catch_interrupts();

  if (!ocr::write_request(pid, req, &err, euid))
    fail("cannot request a checkpoint of " + describe(pid) + ": " + err);
  const std::string failed = "checkpoint of " + proc + " failed: ";
  if (kill(pid, agent.signal) != 0) {
    int e = errno;
    ocr::withdraw_request(pid, req.id, euid);
    fail(failed + "cannot signal it: " + strerror(e));
  }

  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  ocr::CheckpointResult res;
  for (;;) {
    bool present = false;
    if (!ocr::read_result(pid, req.id, &res, &present, &err, euid)) {
      if (present) ocr::remove_result(pid, req.id, euid);
      fail(failed + "unreadable result: " + err);
    }
    if (present) break;
    if (process_gone(pid, agent.start_time)) {
      // It may have answered and then exited (--term): look once more.
      if (ocr::read_result(pid, req.id, &res, &present, &err, euid) && present) break;
      ocr::withdraw_request(pid, req.id, euid);
      fail(proc + " exited during the checkpoint");
    }
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const double elapsed =
        static_cast<double>(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) * 1e-9;
    if (interrupted() || elapsed > opt.timeout) {
      const bool never_seen = ocr::withdraw_request(pid, req.id, euid);
      char limit[32];
      snprintf(limit, sizeof limit, "%g", opt.timeout);
      std::string why;
      if (interrupted())
        why = never_seen ? "interrupted (request withdrawn before the process took it)"
                         : "interrupted (the checkpoint may still complete)";
      else
        why = never_seen ? std::string("the process did not take the request within ") + limit +
                               " s (is its ompi-cr agent thread alive?)"
                         : std::string("no result within ") + limit +
                               " s (the checkpoint may still complete)";
      fail(failed + why);
    }
    timespec nap{0, 2 * 1000 * 1000};
    nanosleep(&nap, nullptr);
  }
  ocr::remove_result(pid, req.id, euid);

  if (!res.ok) fail(failed + (res.message.empty() ? "no reason given" : res.message));
  if (opt.verbose) {
    for (unsigned i = 0; i < OCR_SKIP_REASONS; i++)
      printf("  skipped %s: %llu bytes\n", ocr::skip_reason_name(i),
             static_cast<unsigned long long>(res.skipped[i]));
    printf("  saved %llu bytes, %llu threads, sequence %llu, in %s\n",
           static_cast<unsigned long long>(res.saved_bytes),
           static_cast<unsigned long long>(res.threads), static_cast<unsigned long long>(res.seq),
           millis(res.micros).c_str());
    if (!res.message.empty()) printf("  %s\n", res.message.c_str());
  }
  printf("Image: %s\n", res.image.c_str());
  return 0;
}

namespace {

bool is_mpirun_name(const std::string& name) {
  return name == "mpirun" || name == "mpiexec" || name == "orterun" || name == "prterun" ||
         name == "prun";
}

std::string exe_name(int pid) {
  char exe[4096];
  const std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = readlink(link.c_str(), exe, sizeof exe - 1);
  if (n <= 0) return "";
  exe[n] = 0;
  std::string name = exe;
  return name.substr(name.rfind('/') + 1);
}

// A positional PID: an mpirun of a C/R job (job mode), a process with an ompi-cr agent
// (process mode), else a one-line refusal.
int dispatch(Options opt) {
  const int64_t pid64 = opt.job_pid;
  const int pid = static_cast<int>(pid64);
  const char state = ocr::process_state(pid);
  if (opt.list && (state == 0 || state == 'Z') && !opt.snapshot_dir.empty())
    return list_snapshots(opt);  // a finished job's snapshots, given where they are
  if (state == 0) fail("PID " + std::to_string(pid) + " does not exist");
  if (state == 'Z' || state == 'X') fail(describe(pid) + " has already exited");
  unsigned euid = 0;
  require_ours(pid, &euid);
  std::vector<std::string> env;
  if (!process_environ(pid, &env))
    fail("cannot read the environment of " + describe(pid) + ": " + strerror(errno));
  std::string v;
  const std::string* job = env_value(env, "OMPI_CR_MPIRUN_PID", &v);
  if (job && *job == std::to_string(pid))
    return opt.list ? list_snapshots(opt) : checkpoint_job(opt);
  // A rank alone must not be checkpointed behind its peers' backs: the cut would not be
  // consistent.
  if (job)
    fail(describe(pid) + " is a rank of the MPI job of mpirun " + *job +
         "; checkpoint the job: ompi-checkpoint " + *job);
  if (opt.list) fail(describe(pid) + " is not an mpirun of a job running with C/R");
  const bool mpirun =
      is_mpirun_name(ocr::tools::process_name(pid)) || is_mpirun_name(exe_name(pid));
  adopt_control_dir_of(pid);
  ocr::AgentInfo agent;
  if (!mpirun && (maps_runtime_library(pid) || ocr::read_agent_info(pid, &agent, nullptr, euid))) {
    opt.pid = pid;
    return checkpoint_process(opt);
  }
  if (mpirun) fail(describe(pid) + " is an mpirun not started with --am ft-enable-cr");
  fail(describe(pid) + " is not an mpirun of a job running with C/R");
}

}  // namespace

}  // namespace ocr::tools::checkpoint

int main(int argc, char** argv) {
  using namespace ocr::tools::checkpoint;
  CLI::App app{
      "Checkpoint an MPI job started with `mpirun --am ft-enable-cr` (give the PID of mpirun;\n"
      "on success the last line of output is \"Snapshot Ref.: <seq> <global snapshot dir>\"),\n"
      "or one process started with ompi-cr-run (--pid; the last line is \"Image: <path>\").",
      kTool};
  Options opt;
  auto* positional = app.add_option("PID_OF_MPIRUN", opt.job_pid, "PID of the job's mpirun")
                         ->check(CLI::Range(1, 4194304));
  auto* pid = app.add_option("--pid", opt.pid, "PID of one process started with ompi-cr-run")
                  ->check(CLI::Range(1, 4194304));
  pid->excludes(positional);
  app.add_flag("--term", opt.term, "End the job (process) after a successful checkpoint");
  auto* inc = app.add_flag("--incremental", opt.incremental,
                           "Save only pages written since the previous image (which becomes "
                           "this image's parent)");
  auto* full = app.add_flag("--full", opt.full, "Save complete images (the default)");
  inc->excludes(full);
  app.add_option("--snapshot-dir", opt.snapshot_dir,
                 "Base directory of the snapshot (default: the job's OMPI_CR_SNAPSHOT_DIR, else "
                 "$HOME)");
  app.add_flag("-v,--verbose", opt.verbose, "Report what was saved and skipped");
  app.add_flag("-s,--status", opt.status, "Print the progress of a job checkpoint");
  auto* nowait =
      app.add_flag("-w,--nowait", opt.nowait, "Return once the request is sent (prints its id)");
  auto* list = app.add_flag("-l,--list", opt.list,
                            "List the job's complete snapshots instead of taking one");
  list->excludes(nowait);
  app.add_option("--timeout", opt.timeout, "Seconds to wait for the checkpoint")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.set_version_flag("--version", OMPI_CR_VERSION);
  ocr::tools::parse_or_exit(app, argc, argv, kTool);
  fflush(stdout);
  if (opt.pid) {
    if (opt.list || opt.nowait) fail("--list and --nowait need the PID of an mpirun, not --pid");
    return checkpoint_process(opt);
  }
  if (!opt.job_pid) fail("invalid arguments: give the PID of mpirun, or --pid PID (see --help)");
  return dispatch(opt);
}
