// ompi-restart: restarts an MPI job from its global snapshot directory, or one process
// from its image.
//
//   ompi-restart [-s N] [--hostfile F] [--mpirun_opts "..."] [--showme] [-i] GLOBAL_SNAPSHOT
//   ompi-restart [-v] IMAGE            (or --image IMAGE)
//
// Job mode (a directory) is restart_job.cpp: it validates the whole snapshot, then becomes
// mpirun. Image mode: the work is done by ompi-cr-restore, which this program becomes
// (execv, same PID), so the restored program inherits this process's PID, terminal and
// standard streams, and its exit status is ours.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "build_config.h"
#include "tools/restart_job.h"
#include "tools/tool_paths.h"

namespace {

using ocr::tools::restart::kTool;

[[noreturn]] void restart_image(const std::string& image, bool verbose) {
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Restart an MPI job from its global snapshot directory (ompi_global_snapshot_<PID>.ckpt,\n"
      "the newest complete snapshot unless -s is given), or one process from its image.",
      kTool};
  ocr::tools::restart::JobOptions job;
  std::string target, image;
  app.add_option("GLOBAL_SNAPSHOT", target,
                 "Global snapshot directory of an MPI job, or an image file of one process");
  app.add_option("--image", image, "Image file of one process (the path ompi-checkpoint printed)");
  auto* seq = app.add_option("-s,--seq", job.seq, "Sequence number of the snapshot to restart");
  auto* hostfile = app.add_option("--hostfile", job.hostfile, "Passed to mpirun");
  auto* machinefile = app.add_option("--machinefile", job.machinefile, "Passed to mpirun");
  auto* mpirun_opts = app.add_option("--mpirun_opts", job.mpirun_opts,
                                     "More options for mpirun, split like a shell would");
  auto* showme = app.add_flag("--showme", job.showme, "Print the mpirun command; run nothing");
  auto* info = app.add_flag("-i,--info", job.info, "Print what the snapshot holds; run nothing");
  auto* mpirun = app.add_option("--mpirun", job.mpirun,
                                "The mpirun to run (default: $OMPI_CR_MPIRUN, else mpirun "
                                "from PATH)");
  app.add_flag("-v,--verbose", job.verbose, "Report the steps");
  app.set_version_flag("--version", OMPI_CR_VERSION);
  ocr::tools::parse_or_exit(app, argc, argv, kTool);

  if (!image.empty() && !target.empty())
    ocr::tools::die(kTool, "invalid arguments",
                    "give either an image (--image) or a snapshot, not both (see --help)");
  if (image.empty() && target.empty())
    ocr::tools::die(kTool, "invalid arguments",
                    "give a global snapshot directory or an image (see --help)");
  bool image_mode = !image.empty();
  if (!image_mode) {
    const std::string path = ocr::tools::absolute_path(target);
    struct stat st;
    if (stat(path.c_str(), &st) != 0) ocr::tools::die(kTool, "snapshot " + path, strerror(errno));
    if (S_ISREG(st.st_mode)) {
      image_mode = true;
      image = target;
    } else if (!S_ISDIR(st.st_mode)) {
      ocr::tools::die(kTool, "snapshot " + path, "neither a directory nor an image file");
    }
  }
  if (image_mode) {
    for (CLI::Option* o : {seq, hostfile, machinefile, mpirun_opts, showme, info, mpirun})
      if (o->count())
        ocr::tools::die(kTool, "invalid arguments",
                        o->get_name() +
                            " applies to a global snapshot directory, not to the "
                            "image " +
                            image + " (see --help)");
    restart_image(image, job.verbose);
  }
  job.snapshot = target;
  job.seq_given = seq->count() > 0;
  ocr::tools::restart::restart_job(job);
}
