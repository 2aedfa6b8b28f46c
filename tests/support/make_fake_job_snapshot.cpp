// Test support for tests/scripts/restart_cli.sh: commits the HDF5 metadata of a global
// snapshot around single-process images the test placed at
// GDIR/<seq>/opal_snapshot_<rank>.ckpt/image.crimg, so ompi-restart's job mode can be
// tested without MPI. Each rank row takes its pid and image hash from the image header.
//
//   make_fake_job_snapshot GDIR SEQ NPROCS [--parent P] [--cwd DIR] [--env NAME=VALUE]...
//                          [--path RANK RELPATH] [--] [ARGV...]
//
// --parent P makes the snapshot incremental with parent P; --path records RELPATH as the
// image_path of RANK (read from there too), for the "unexpected image path" case.
// Exit 0, or 1 with one line.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "crs/image_reader.h"
#include "snapc/global_snapshot.h"

namespace {

[[noreturn]] void die(const std::string& msg) {
  fprintf(stderr, "make_fake_job_snapshot: %s\n", msg.c_str());
  exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4)
    die("usage: make_fake_job_snapshot GDIR SEQ NPROCS [--parent P] [--cwd DIR] "
        "[--env NAME=VALUE]... [--] [ARGV...]");
  const std::string gdir = argv[1];
  const uint64_t seq = strtoull(argv[2], nullptr, 10);
  const int nprocs = atoi(argv[3]);
  int64_t parent = -1;
  std::vector<std::pair<int, std::string>> paths;
  ocr::snapc::JobInfo job;
  char cwd[PATH_MAX];
  job.cwd = getcwd(cwd, sizeof cwd) ? cwd : "/";
  for (int i = 4; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--parent" && i + 1 < argc) {
      parent = atoll(argv[++i]);
    } else if (a == "--cwd" && i + 1 < argc) {
      job.cwd = argv[++i];
    } else if (a == "--env" && i + 1 < argc) {
      job.environment.push_back(argv[++i]);
    } else if (a == "--path" && i + 2 < argc) {
      paths.emplace_back(atoi(argv[i + 1]), argv[i + 2]);
      i += 2;
    } else if (a == "--") {
      for (i++; i < argc; i++) job.argv.push_back(argv[i]);
    } else {
      job.argv.push_back(a);
    }
  }
  if (job.argv.empty()) job.argv = {"./app"};
  job.nprocs = nprocs;
  job.mpirun_pid = getpid();
  job.mpi_library = "fake MPI for tests (make_fake_job_snapshot)";
  char host[64] = {};
  gethostname(host, sizeof host - 1);
  job.hosts = {host};

  ocr::snapc::SnapshotInfo snap;
  snap.seq = seq;
  snap.kind = parent >= 0 ? "incremental" : "full";
  snap.parent_seq = parent;
  snap.started = 1.7e9;
  snap.committed = 1.7e9 + 1;
  snap.total_seconds = 1;
  snap.complete = true;
  for (int r = 0; r < nprocs; r++) {
    std::string rel = ocr::snapc::rank_image_relpath(seq, r);
    for (const auto& [rank, path] : paths)
      if (rank == r) rel = path;
    ocr::ReadOptions ro;
    ro.verify_data = false;
    ro.check_owner = false;
    ocr::Image img;
    std::string err;
    if (!ocr::read_image(gdir + "/" + rel, ro, &img, &err)) die(err);
    ocr::snapc::RankRecord rec{};
    rec.rank = r;
    rec.pid = img.header.pid;
    snprintf(rec.host, sizeof rec.host, "%s", host);
    snprintf(rec.image_path, sizeof rec.image_path, "%s", rel.c_str());
    rec.bytes_written = img.header.saved_bytes;
    rec.image_hash = img.header.header_hash;
    snprintf(rec.kind, sizeof rec.kind, "%s",
             (img.header.flags & OCR_HDR_INCREMENTAL) ? "incremental" : "full");
    snap.ranks.push_back(rec);
  }
  std::string err;
  if (!ocr::snapc::commit_snapshot(gdir, job, snap, &err)) die(err);
  return 0;
}
