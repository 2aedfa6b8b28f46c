// What ompi-checkpoint's two modes (one process, a whole MPI job) share: looking at the
// target process through /proc, the random request id, and Ctrl-C handling.
#pragma once

#include <csignal>
#include <cstdint>
#include <string>
#include <vector>

namespace ocr::tools::checkpoint {

inline constexpr const char* kTool = "ompi-checkpoint";

struct Options {
  int pid = 0;          // --pid: one process
  int64_t job_pid = 0;  // positional PID_OF_MPIRUN
  bool term = false;
  bool verbose = false;
  bool status = false;  // -s: print progress lines
  bool nowait = false;  // -w: return once the request is sent
  bool list = false;    // -l: list the job's complete snapshots
  bool incremental = false;
  bool full = false;
  std::string snapshot_dir;
  double timeout = 600;
};

[[noreturn]] void fail(const std::string& message);
std::string describe(int pid);  // "process N (name)"

// Real and effective uid from /proc/<pid>/status; false if the process is gone.
bool process_uids(int pid, unsigned* ruid, unsigned* euid);
// Fails (exits) unless the caller may act on the process: same uid, or root.
void require_ours(int pid, unsigned* euid);
// /proc/<pid>/environ as "NAME=value" entries; false if unreadable.
bool process_environ(int pid, std::vector<std::string>* env);
// Value of NAME in env, or nullptr.
const std::string* env_value(const std::vector<std::string>& env, const std::string& name,
                             std::string* storage);
// The process maps libompi-cr.so (the runtime).
bool maps_runtime_library(int pid);
// Makes OMPI_CR_CONTROL_DIR ours as it is in the process's environment, so both sides
// resolve the same control directory.
void adopt_control_dir_of(int pid);
uint64_t random_id();
std::string millis(uint64_t micros);
bool process_gone(int pid, uint64_t start_time);

// Ctrl-C / SIGTERM / SIGHUP set interrupted() instead of killing the tool, so a pending
// request can be withdrawn.
void catch_interrupts();
bool interrupted();

int checkpoint_process(const Options& opt);  // ompi_checkpoint.cpp
int checkpoint_job(const Options& opt);      // checkpoint_job.cpp
int list_snapshots(const Options& opt);      // checkpoint_job.cpp

}  // namespace ocr::tools::checkpoint
