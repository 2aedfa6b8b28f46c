// Human-readable output shared by ompi-cr-info and ompi-restart (see snapshot_summary.h).
// Moved here from ompi_cr_info.cpp unchanged.
#include "tools/snapshot_summary.h"

#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "crs/skip_reasons.h"

namespace ocr::tools {

namespace {

using ull = unsigned long long;

std::string wall_time(double unix_seconds) {
  return format_time_ns(static_cast<uint64_t>(unix_seconds * 1e9));
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

}  // namespace

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  char b[32];
  if (u == 0)
    snprintf(b, sizeof b, "%llu B", static_cast<ull>(bytes));
  else
    snprintf(b, sizeof b, "%.1f %s", v, units[u]);
  return b;
}

std::string format_time_ns(uint64_t ns) {
  time_t secs = static_cast<time_t>(ns / 1000000000ull);
  struct tm tm;
  char b[64], out[96];
  localtime_r(&secs, &tm);
  strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S", &tm);
  char zone[16];
  strftime(zone, sizeof zone, "%z", &tm);
  snprintf(out, sizeof out, "%s.%03llu %s", b, static_cast<ull>(ns / 1000000 % 1000), zone);
  return out;
}

void print_global_snapshot(const snapc::GlobalSnapshot& g) {
  const snapc::JobInfo& j = g.job;
  printf("Global snapshot: %s\n", g.dir.c_str());
  printf("Job:         mpirun pid %lld, %d rank%s on %zu host%s (%s)\n",
         static_cast<long long>(j.mpirun_pid), j.nprocs, j.nprocs == 1 ? "" : "s", j.hosts.size(),
         j.hosts.size() == 1 ? "" : "s", join(j.hosts).c_str());
  printf("Command:     %s\n", join(j.argv).c_str());
  printf("Directory:   %s\n", j.cwd.c_str());
  printf("MPI library: %s\n", j.mpi_library.empty() ? "-" : j.mpi_library.c_str());
  for (const std::string& e : j.environment) printf("Environment: %s\n", e.c_str());
  printf("Snapshots:   %zu complete\n", g.snapshots.size());
  for (const snapc::SnapshotInfo& s : g.snapshots) {
    uint64_t bytes = 0, msgs = 0, msg_bytes = 0;
    for (const snapc::RankRecord& r : s.ranks) {
      bytes += r.bytes_written;
      msgs += r.drained_messages;
      msg_bytes += r.drained_bytes;
    }
    printf("\nSnapshot %llu: %s", static_cast<ull>(s.seq), s.kind.c_str());
    if (s.parent_seq >= 0) printf(" (parent %lld)", static_cast<long long>(s.parent_seq));
    printf("%s\n", s.term ? ", job ended after it (--term)" : "");
    printf("  Committed: %s (started %s)\n", wall_time(s.committed).c_str(),
           wall_time(s.started).c_str());
    printf("  Timings:   coordination %.3f s, writing %.3f s, total %.3f s\n",
           s.coordination_seconds, s.write_seconds, s.total_seconds);
    printf("  Written:   %llu bytes (%s); drained %llu messages (%llu bytes)\n",
           static_cast<ull>(bytes), human_bytes(bytes).c_str(), static_cast<ull>(msgs),
           static_cast<ull>(msg_bytes));
    printf("  %-5s %-16s %-8s %10s %10s %9s %9s %8s  %s\n", "rank", "host", "pid", "bytes", "pages",
           "drained", "dr.bytes", "write s", "image");
    for (const snapc::RankRecord& r : s.ranks) {
      printf("  %-5d %-16s %-8d %10s %10llu %9llu %9llu %8.3f  %s/%s\n", r.rank, r.host, r.pid,
             human_bytes(r.bytes_written).c_str(), static_cast<ull>(r.pages_saved),
             static_cast<ull>(r.drained_messages), static_cast<ull>(r.drained_bytes),
             r.write_seconds, g.dir.c_str(), r.image_path);
      std::string skipped;
      for (unsigned i = 0; i < OCR_SKIP_REASONS; i++)
        if (r.pages_skipped[i])
          skipped += std::string(skipped.empty() ? "" : ", ") + skip_reason_name(i) + " " +
                     std::to_string(r.pages_skipped[i]);
      if (!skipped.empty()) printf("        skipped pages: %s\n", skipped.c_str());
    }
  }
}

}  // namespace ocr::tools
