// Human-readable output shared by ompi-cr-info and ompi-restart -i: byte counts, wall-clock
// times, and the summary of a global snapshot (job, every complete snapshot, each rank's
// image).
#pragma once

#include <cstdint>
#include <string>

#include "snapc/global_snapshot.h"

namespace ocr::tools {

// "123 B", "1.5 MiB", ...
std::string human_bytes(uint64_t bytes);
// Local time with milliseconds and zone, "2026-11-03 14:05:01.123 +0100".
std::string format_time_ns(uint64_t unix_ns);
// The summary of a global snapshot directory on stdout, as ompi-cr-info prints it.
void print_global_snapshot(const snapc::GlobalSnapshot& g);

}  // namespace ocr::tools
