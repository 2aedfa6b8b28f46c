// ompi-cr-restore IMAGE: turns this process into the checkpointed one. ompi-restart
// execs it so that the restored program keeps ompi-restart's PID, terminal and exit code.
//
// ompi-cr-restore --job GDIR --seq N: what mpirun runs for each rank of a restarted MPI job
// (ompi-restart builds that command). The rank comes from OMPI_COMM_WORLD_RANK; the proxy
// (ompi-cr-proxy, which joins the new job in this rank's place) is started first, then the
// rank's image of snapshot N is restored with the proxy's channel handed to its runtime.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "crs/restore_loader.h"
#include "proxy/proxy_launch.h"
#include "snapc/global_snapshot.h"
#include "tools/tool_paths.h"

int main(int argc, char** argv) {
  CLI::App app{"Restore a process from an ompi-cr image (in the foreground, in this process)",
               "ompi-cr-restore"};
  std::string image, job;
  pid_t proxy = 0;
  int64_t seq = -1;
  ocr::RestoreOptions opt;
  app.add_flag("-v,--verbose", opt.verbose, "Describe the restore on stderr");
  app.add_option("image", image, "Image file written by ompi-checkpoint");
  app.add_option("--job", job, "Global snapshot directory of an MPI job (run by mpirun)");
  app.add_option("--seq", seq, "Snapshot sequence number (with --job)")
      ->check(CLI::NonNegativeNumber);
  ocr::tools::parse_or_exit(app, argc, argv, "ompi-cr-restore");
  if (job.empty() == image.empty())
    ocr::tools::die("ompi-cr-restore", "give either an IMAGE or --job GDIR --seq N");
  if (!job.empty()) {
    if (seq < 0) ocr::tools::die("ompi-cr-restore", "--job needs --seq N");
    const char* r = getenv("OMPI_COMM_WORLD_RANK");
    char* end = nullptr;
    long rank = r ? strtol(r, &end, 10) : -1;
    if (!r || *end != 0 || rank < 0)
      ocr::tools::die(
          "ompi-cr-restore",
          "--job: OMPI_COMM_WORLD_RANK is not set (run by mpirun, through ompi-restart)");
    image = job + "/" +
            ocr::snapc::rank_image_relpath(static_cast<uint64_t>(seq), static_cast<int>(rank));
    std::string err;
    if (!ocr::proxy::launch_proxy(ocr::tools::sibling_program("ompi-cr-proxy"), &opt.proxy_channel,
                                  &proxy, &err))
      ocr::tools::die("ompi-cr-restore", "rank " + std::to_string(rank) + ": " + err);
  }
  std::string error;
  ocr::restore_process(image, opt, &error);
  fprintf(stderr, "ompi-cr-restore: %s\n", error.c_str());
  if (!opt.proxy_channel.empty()) {
    // Nothing was restored: the proxy (which may be waiting in MPI_Init for the others)
    // must not outlive this rank, nor its channel file.
    unlink(opt.proxy_channel.c_str());
    if (proxy > 0) kill(proxy, SIGKILL);
  }
  return 1;
}
