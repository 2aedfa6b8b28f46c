// Helpers shared by ompi-checkpoint's process mode and job mode (see checkpoint_common.h).
#include "tools/checkpoint_common.h"

#include <sys/random.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "snapc/control_channel.h"
#include "tools/tool_paths.h"

namespace ocr::tools::checkpoint {

namespace {
volatile sig_atomic_t g_interrupted = 0;

void on_interrupt(int) {
  g_interrupted = 1;
}
}  // namespace

void fail(const std::string& message) {
  ocr::tools::die(kTool, message);
}

std::string describe(int pid) {
  return "process " + std::to_string(pid) + " (" + ocr::tools::process_name(pid) + ")";
}

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

void require_ours(int pid, unsigned* euid) {
  unsigned ruid = 0;
  if (!process_uids(pid, &ruid, euid)) fail("PID " + std::to_string(pid) + " does not exist");
  const unsigned me = getuid();
  if (me != 0 && ruid != me && *euid != me)
    fail(describe(pid) + " belongs to uid " + std::to_string(ruid) + ", not to you (uid " +
         std::to_string(me) + ")");
}

bool process_environ(int pid, std::vector<std::string>* env) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  if (!in) return false;
  env->clear();
  std::string entry;
  while (std::getline(in, entry, '\0')) env->push_back(entry);
  return !in.bad();
}

const std::string* env_value(const std::vector<std::string>& env, const std::string& name,
                             std::string* storage) {
  const std::string key = name + "=";
  for (const std::string& e : env)
    if (e.compare(0, key.size(), key) == 0) {
      *storage = e.substr(key.size());
      return storage;
    }
  return nullptr;
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
  std::vector<std::string> env;
  if (!process_environ(pid, &env)) return;  // not readable: keep ours
  std::string v;
  if (env_value(env, "OMPI_CR_CONTROL_DIR", &v))
    setenv("OMPI_CR_CONTROL_DIR", v.c_str(), 1);
  else
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

void catch_interrupts() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);
}

bool interrupted() {
  return g_interrupted != 0;
}

}  // namespace ocr::tools::checkpoint
