// Capture of the per-process kernel state an image records besides memory and threads:
// open files, signal dispositions, the mm layout fields behind brk and /proc/PID/cmdline,
// cwd, umask, personality, and the CPU's extended-state format. Called by the agent while
// the application is parked: no malloc, only the arena it is given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <string_view>
#include <vector>

#include "crs/image_format.h"

namespace ocr {

struct CapturedFd {
  ocr_fd_record rec{};
  std::string_view path;  // in arena memory
  std::string_view data;  // OCR_FD_PIPE: the bytes buffered in the pipe (one end per pipe)
};

// Records every open descriptor except those in `skip` (the runtime's own). Pipes whose
// both ends are open here become OCR_FD_PIPE: their buffered bytes are read out through a
// second open of the pipe, kept in `data`, and written back, so the process sees no change.
int capture_fds(std::pmr::memory_resource* mr, const int* skip, int nskip,
                std::pmr::vector<CapturedFd>& out);

int capture_sigactions(ocr_sigaction_record* out);

// Fields of /proc/self/stat and /proc/self/auxv that PR_SET_MM_MAP takes back.
int capture_mm_map(ocr_mm_map* out);

// umask and personality cannot be read without setting them; both are put back at once.
uint32_t capture_umask();
uint32_t capture_personality();

// readlink of /proc/self/<name> into arena memory ("cwd", "exe").
std::string_view capture_proc_link(const char* name, std::pmr::memory_resource* mr);

// XCR0: which extended register state the kernel puts into signal frames here.
uint64_t cpu_xfeatures();
uint32_t cpu_xsave_size();

}  // namespace ocr
