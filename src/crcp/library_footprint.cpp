// Finds the MPI library's threads, descriptors and mappings (see library_footprint.h).
#include "crcp/library_footprint.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

namespace ocr::crcp {
namespace {

std::set<long> numeric_entries(const char* dir) {
  std::set<long> out;
  DIR* d = opendir(dir);
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end;
    long v = strtol(e->d_name, &end, 10);
    if (*end == 0 && end != e->d_name) out.insert(v);
  }
  closedir(d);
  return out;
}

std::string fd_target(int fd) {
  char link[64], buf[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// Files of Open MPI's runtime: its session directory (OMPI_FILE_LOCATION names this
// rank's part of it; the job's shared part is its ancestors) and the vader segments.
bool is_library_path(const std::string& path) {
  if (path.find("vader_segment") != std::string::npos) return true;
  if (path.find("/ompi-cr-proxy.") != std::string::npos) return true;  // a proxy's channel
  // opal's POSIX shared-memory segments (shm_open names; e.g. the vader/sm rendezvous).
  if (path.compare(0, 17, "/dev/shm/open_mpi") == 0) return true;
  if (path.find("/ompi.") != std::string::npos) return true;  // ORTE session directories
  if (const char* loc = getenv("OMPI_FILE_LOCATION"); loc && *loc) {
    std::string l = loc;
    // The job's session dir: three levels above the rank's (…/<jobfam>/<job>/<vpid>).
    for (int up = 0; up < 3; up++) {
      size_t slash = l.rfind('/');
      if (slash == std::string::npos || slash == 0) break;
      l.resize(slash);
    }
    if (l.size() > 1 && path.compare(0, l.size(), l) == 0) return true;
  }
  return false;
}

}  // namespace

ProcessFootprint current_footprint() {
  ProcessFootprint f;
  for (long t : numeric_entries("/proc/self/task")) f.tids.insert(static_cast<pid_t>(t));
  for (long d : numeric_entries("/proc/self/fd")) f.fds.insert(static_cast<int>(d));
  return f;
}

LibraryFootprint library_footprint(const std::vector<pid_t>& init_tids,
                                   const std::vector<int>& init_fds) {
  LibraryFootprint out;
  const ProcessFootprint now = current_footprint();
  for (pid_t t : init_tids)
    if (now.tids.count(t)) out.tids.push_back(t);
  std::set<int> fds(init_fds.begin(), init_fds.end());
  for (int fd : now.fds) {
    std::string target = fd_target(fd);
    if (target.compare(0, 7, "socket:") == 0 || is_library_path(target)) fds.insert(fd);
  }
  for (int fd : fds)
    if (now.fds.count(fd)) out.fds.push_back(fd);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long lo = 0, hi = 0;
    char perms[8] = {};
    int path_at = 0;
    if (sscanf(line.c_str(), "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &path_at) < 3) continue;
    if (perms[3] != 's' || path_at <= 0) continue;  // transport segments are shared
    std::string path = line.substr(static_cast<size_t>(path_at));
    if (is_library_path(path)) out.areas.push_back({lo, hi});
  }
  return out;
}

}  // namespace ocr::crcp
