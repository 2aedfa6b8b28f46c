// ompi-restart: restarts a process from its image. The work is done by ompi-cr-restore,
// which this program becomes (execv, same PID), so the restored program inherits this
// process's PID, terminal and standard streams, and its exit status is ours. Kept as a
// separate front end because it will also take global (MPI) snapshots and relaunch jobs.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "build_config.h"
#include "tools/tool_paths.h"

namespace {
constexpr const char* kTool = "ompi-restart";
}

int main(int argc, char** argv) {
  CLI::App app{"Restart a process from an image written by ompi-checkpoint.", kTool};
  std::string image;
  bool verbose = false;
  app.add_option("--image", image, "Image file (the path ompi-checkpoint printed)")->required();
  app.add_flag("-v,--verbose", verbose, "Report the restore steps");
  app.set_version_flag("--version", OMPI_CR_VERSION);
  ocr::tools::parse_or_exit(app, argc, argv, kTool);

  const std::string path = ocr::tools::absolute_path(image);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) ocr::tools::die(kTool, "image " + path, strerror(errno));
  if (S_ISDIR(st.st_mode))
    ocr::tools::die(kTool, "image " + path, "is a directory, not an image file");
  if (!S_ISREG(st.st_mode)) ocr::tools::die(kTool, "image " + path, "not a regular file");

  std::string restore = ocr::tools::sibling_program("ompi-cr-restore");
  std::vector<char*> args{restore.data()};
  std::string v = "-v";
  if (verbose) args.push_back(v.data());
  std::string p = path;  // absolute, so it cannot be mistaken for an option
  args.push_back(p.data());
  args.push_back(nullptr);
  fflush(stdout);
  execv(restore.c_str(), args.data());
  ocr::tools::die(kTool, "cannot execute " + restore, strerror(errno), 127);
}
