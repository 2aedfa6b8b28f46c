// ompi-cr-run: starts a program under the ompi-cr runtime. It only prepares the
// environment (LD_PRELOAD of libompi-cr.so, optional snapshot directory) and execs, so the
// program keeps this process's PID, terminal and exit status; that makes it usable as a
// prefix under any launcher (mpiexec -n 4 ompi-cr-run ./app).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "build_config.h"
#include "tools/tool_paths.h"

namespace {

constexpr const char* kTool = "ompi-cr-run";

// LD_PRELOAD entries are separated by spaces or colons.
bool preload_contains(const std::string& list, const std::string& lib) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find_first_of(": ", pos);
    if (end == std::string::npos) end = list.size();
    if (list.compare(pos, end - pos, lib) == 0) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "ompi-cr-run [--snapshot-dir DIR] [--] PROGRAM [ARGS...]\n\n"
      "Run PROGRAM under ompi-cr so that ompi-checkpoint can checkpoint it.\n"
      "PROGRAM replaces this process (same PID) with libompi-cr.so preloaded. Everything\n"
      "after PROGRAM is passed to it; use -- before a PROGRAM whose name starts with '-'.",
      kTool};
  std::string snapshot_dir;
  app.add_option("--snapshot-dir", snapshot_dir,
                 "Directory for the images of this process (sets OMPI_CR_SNAPSHOT_DIR)");
  app.set_version_flag("--version", OMPI_CR_VERSION);
  app.prefix_command();
  ocr::tools::parse_or_exit(app, argc, argv, kTool);

  std::vector<std::string> args = app.remaining();
  if (!args.empty() && args[0] == "--") {
    args.erase(args.begin());
  } else if (!args.empty() && args[0].size() > 1 && args[0][0] == '-') {
    // prefix_command() hands unknown options over as if they were the program.
    ocr::tools::die(kTool, "invalid arguments", "unknown option " + args[0] + " (see --help)");
  }
  if (args.empty()) ocr::tools::die(kTool, "invalid arguments", "no PROGRAM given (see --help)");

  const std::string lib = ocr::tools::runtime_library();
  if (access(lib.c_str(), R_OK) != 0)
    ocr::tools::die(kTool, "runtime library " + lib, strerror(errno));
  const char* old = getenv("LD_PRELOAD");
  std::string preload = lib;
  if (old && *old) preload = preload_contains(old, lib) ? std::string(old) : lib + ":" + old;
  if (setenv("LD_PRELOAD", preload.c_str(), 1) != 0)
    ocr::tools::die(kTool, "LD_PRELOAD", strerror(errno));
  if (!snapshot_dir.empty() &&
      setenv("OMPI_CR_SNAPSHOT_DIR", ocr::tools::absolute_path(snapshot_dir).c_str(), 1) != 0)
    ocr::tools::die(kTool, "OMPI_CR_SNAPSHOT_DIR", strerror(errno));

  std::vector<char*> cargv;
  for (std::string& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  execvp(cargv[0], cargv.data());
  ocr::tools::die(kTool, "cannot execute " + args[0], strerror(errno), 127);
}
