// ompi-cr-restore IMAGE: turns this process into the checkpointed one. ompi-restart
// execs it so that the restored program keeps ompi-restart's PID, terminal and exit code;
// for MPI jobs mpirun starts it once per rank.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "crs/restore_loader.h"

int main(int argc, char** argv) {
  CLI::App app{"Restore a process from an ompi-cr image (in the foreground, in this process)",
               "ompi-cr-restore"};
  std::string image;
  ocr::RestoreOptions opt;
  app.add_flag("-v,--verbose", opt.verbose, "Describe the restore on stderr");
  app.add_option("image", image, "Image file written by ompi-checkpoint")->required();
  CLI11_PARSE(app, argc, argv);
  std::string error;
  ocr::restore_process(image, opt, &error);
  fprintf(stderr, "ompi-cr-restore: %s\n", error.c_str());
  return 1;
}
