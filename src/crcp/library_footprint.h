// What the MPI library itself owns in a rank (DESIGN.md §3, direct mode): threads and
// descriptors it created during MPI_Init, its transport segments and session files, its
// sockets. Images leave all of it out (a restored rank gets a new library from its proxy).
#pragma once

#include <sys/types.h>

#include <set>
#include <string>
#include <vector>

#include "crs/image_writer.h"

namespace ocr::crcp {

struct ProcessFootprint {
  std::set<pid_t> tids;
  std::set<int> fds;
};
ProcessFootprint current_footprint();

struct LibraryFootprint {
  std::vector<pid_t> tids;          // library threads still alive
  std::vector<int> fds;             // library descriptors and every socket
  std::vector<AddressRange> areas;  // transport segments, session files
};
// `init_tids`/`init_fds`: what MPI_Init created (footprint after minus before).
LibraryFootprint library_footprint(const std::vector<pid_t>& init_tids,
                                   const std::vector<int>& init_fds);

}  // namespace ocr::crcp
