// ompi-checkpoint: asks the ompi-cr runtime inside a running process for a checkpoint and
// waits for the outcome. The process is checked first (exists, is ours, really runs the
// runtime) so that the trigger signal, whose default action may be to kill, is never
// sent to a process that would not understand it.
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

#include "build_config.h"
#include "crs/skip_reasons.h"
#include "snapc/control_channel.h"
#include "tools/tool_paths.h"

namespace {

constexpr const char* kTool = "ompi-checkpoint";

struct Options {
  int pid = 0;
  bool term = false;
  bool verbose = false;
  bool incremental = false;
  bool full = false;
  std::string snapshot_dir;
  double timeout = 600;
};

volatile sig_atomic_t g_interrupted = 0;

void on_interrupt(int) {
  g_interrupted = 1;
}

[[noreturn]] void fail(const std::string& message) {
  ocr::tools::die(kTool, message);
}

std::string describe(int pid) {
  return "process " + std::to_string(pid) + " (" + ocr::tools::process_name(pid) + ")";
}

// Real and effective uid from /proc/<pid>/status; false if the process is gone.
bool process_uids(int pid, unsigned* ruid, unsigned* euid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, 4, "Uid:") == 0) {
      std::istringstream fields(line.substr(4));
      return static_cast<bool>(fields >> *ruid >> *euid);
    }
  }
  return false;
}

// The runtime maps libompi-cr.so (soname versions included, and " (deleted)" if the file
// was replaced since). An agent file alone could be stale from an earlier incarnation.
bool maps_runtime_library(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(in, line)) {
    size_t slash = line.rfind('/');
    if (slash == std::string::npos) continue;
    if (line.compare(slash + 1, 13, "libompi-cr.so") == 0) {
      char next = slash + 14 < line.size() ? line[slash + 14] : '\0';
      if (next == '\0' || next == '.' || next == ' ') return true;
    }
  }
  return false;
}

// The runtime resolves its control directory from its own environment; use the same one
// (its initial environment is the best view we have) so both sides meet.
void adopt_control_dir_of(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  if (!in) return;  // not readable: keep ours
  std::string entry;
  const std::string key = "OMPI_CR_CONTROL_DIR=";
  while (std::getline(in, entry, '\0')) {
    if (entry.compare(0, key.size(), key) == 0) {
      setenv("OMPI_CR_CONTROL_DIR", entry.c_str() + key.size(), 1);
      return;
    }
  }
  unsetenv("OMPI_CR_CONTROL_DIR");
}

uint64_t random_id() {
  uint64_t id = 0;
  while (id == 0) {
    if (getrandom(&id, sizeof id, 0) != sizeof id) {
      timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      id = (static_cast<uint64_t>(ts.tv_nsec) << 20) ^ static_cast<uint64_t>(getpid()) ^
           static_cast<uint64_t>(ts.tv_sec);
    }
  }
  return id;
}

std::string millis(uint64_t micros) {
  char b[48];
  snprintf(b, sizeof b, "%llu.%03llu ms", static_cast<unsigned long long>(micros / 1000),
           static_cast<unsigned long long>(micros % 1000));
  return b;
}

bool process_gone(int pid, uint64_t start_time) {
  char state = ocr::process_state(pid);
  return state == 0 || state == 'Z' || state == 'X' || ocr::process_start_time(pid) != start_time;
}

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

// One process started with ompi-cr-run (or with the runtime preloaded by hand). The MPI
// path (PID of mpirun, global snapshot) will sit next to this one.
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

  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);

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
    if (g_interrupted || elapsed > opt.timeout) {
      const bool never_seen = ocr::withdraw_request(pid, req.id, euid);
      char limit[32];
      snprintf(limit, sizeof limit, "%g", opt.timeout);
      std::string why;
      if (g_interrupted)
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Checkpoint a process started with ompi-cr-run. On success the last line of output is\n"
      "\"Image: <absolute path of the image>\".",
      kTool};
  Options opt;
  app.add_option("--pid", opt.pid, "PID of the process to checkpoint")
      ->required()
      ->check(CLI::Range(1, 4194304));
  app.add_flag("--term", opt.term, "End the process after a successful checkpoint");
  auto* inc = app.add_flag("--incremental", opt.incremental,
                           "Save only pages written since the process's previous image "
                           "(which becomes this image's parent)");
  auto* full = app.add_flag("--full", opt.full, "Save a complete image (the default)");
  inc->excludes(full);
  app.add_option("--snapshot-dir", opt.snapshot_dir,
                 "Directory for the image (default: the process's OMPI_CR_SNAPSHOT_DIR, else "
                 "$HOME)");
  app.add_flag("-v,--verbose", opt.verbose, "Report what was saved and skipped");
  app.add_option("--timeout", opt.timeout, "Seconds to wait for the checkpoint")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.set_version_flag("--version", OMPI_CR_VERSION);
  ocr::tools::parse_or_exit(app, argc, argv, kTool);
  fflush(stdout);
  return checkpoint_process(opt);
}
