// Page-level scan of one address range: which pages of a region hold data that the
// image must carry. Uses the PAGEMAP_SCAN ioctl (Linux >= 6.7) when the kernel has it,
// which reports ranges instead of one word per page and tells zero-page mappings apart;
// else reads /proc/self/pagemap. Runs on the checkpoint path: no heap, errors as -errno.
#pragma once

#include <sys/ioctl.h>

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <vector>

namespace ocr {

// PAGEMAP_SCAN ABI (include/uapi/linux/fs.h, Linux >= 6.7). The system headers (Debian 12)
// predate it, and newer ones define the same names as macros and structs; our own names
// inside ocr:: work with both.
constexpr uint64_t kPageIsWpAllowed = 1ull << 0;
constexpr uint64_t kPageIsWritten = 1ull << 1;
constexpr uint64_t kPageIsFile = 1ull << 2;
constexpr uint64_t kPageIsPresent = 1ull << 3;
constexpr uint64_t kPageIsSwapped = 1ull << 4;
constexpr uint64_t kPageIsPfnZero = 1ull << 5;
constexpr uint64_t kPageIsHuge = 1ull << 6;
constexpr uint64_t kPageIsSoftDirty = 1ull << 7;

constexpr uint64_t kPmScanWpMatching = 1ull << 0;
constexpr uint64_t kPmScanCheckWpAsync = 1ull << 1;

struct PmPageRegion {  // struct page_region
  uint64_t start;
  uint64_t end;
  uint64_t categories;
};

struct PmScanArg {  // struct pm_scan_arg
  uint64_t size;
  uint64_t flags;
  uint64_t start;
  uint64_t end;
  uint64_t walk_end;
  uint64_t vec;
  uint64_t vec_len;
  uint64_t max_pages;
  uint64_t category_inverted;
  uint64_t category_mask;
  uint64_t category_anyof_mask;
  uint64_t return_mask;
};
static_assert(sizeof(PmPageRegion) == 24 && sizeof(PmScanArg) == 96);

constexpr unsigned long kPagemapScanIoctl = _IOWR('f', 16, PmScanArg);  // PAGEMAP_SCAN

constexpr uint64_t kScanPageSize = 4096;

struct PageRun {
  uint64_t addr;
  uint64_t npages;
};  // page = 4096 bytes

enum class PageSelect {
  // Private anonymous memory: every page our page tables hold (present or swapped).
  kPresentOrSwapped,
  // Private FILE mappings: only pages copied on write (present or swapped, NOT file-backed).
  kPrivateCopies,
  // Memory whose backing object holds data our page tables may not map: shared anonymous
  // memory (shmem, /dev/zero shared, memfd, SysV; a page written only by another process
  // sharing it is not in our page tables) and private mappings of deleted files (file
  // pages never faulted in are not either, and the file cannot be reopened). Like
  // kPresentOrSwapped, plus pages absent from our page tables that mincore() reports
  // resident in the object. Still missed: object pages that were swapped out / evicted.
  // Not for private anonymous memory: it would cost a mincore walk over every sparse
  // reservation for nothing.
  kPresentOrResident,
};

// In pages.
struct PageCounts {
  uint64_t selected = 0;
  uint64_t zero = 0;
  uint64_t absent = 0;
  uint64_t file_clean = 0;
  uint64_t resident_only = 0;  // subset of `selected`: found by mincore, not in page tables
};

class PageScanner {
 public:
  PageScanner() = default;
  ~PageScanner();  // closes fd
  PageScanner(const PageScanner&) = delete;
  PageScanner& operator=(const PageScanner&) = delete;

  // Opens /proc/self/pagemap and probes PAGEMAP_SCAN; 0 or -errno.
  int open_self();
  // True when scan() uses the ioctl (the kernel has it and the fallback is not forced).
  bool has_pagemap_scan() const { return has_scan_ && !force_fallback_; }
  // For tests: use /proc/self/pagemap reading even if the ioctl exists.
  void force_pagemap_fallback(bool on) { force_fallback_ = on; }

  // Appends to `out` the runs of pages in [start,end) selected by `sel`, adjacent runs
  // merged (only among the runs this call appends: a run never spans two calls, so
  // per-region bookkeeping stays exact), and adds to `counts`. start and end must be page
  // aligned (else -EINVAL). Pages that map the shared zero page (PAGE_IS_PFNZERO, only
  // visible through PAGEMAP_SCAN) are NOT selected and count as `zero`; in the fallback
  // they are indistinguishable from present pages and are selected. Absent (never
  // touched) pages count as `absent`; with kPrivateCopies, present file-backed pages count
  // as `file_clean`; with kPresentOrResident, pages found only by mincore count as
  // `selected` and `resident_only`. Pages the kernel does not walk (no VMA, VM_PFNMAP)
  // count as absent. Returns 0 or -errno (then `out` and `counts` may be partial).
  // Uses about 16 KiB of stack.
  int scan(uint64_t start, uint64_t end, PageSelect sel, std::pmr::vector<PageRun>& out,
           PageCounts& counts);

 private:
  int scan_ioctl(uint64_t start, uint64_t end, PageSelect sel, std::pmr::vector<PageRun>& out,
                 PageCounts& counts);
  int scan_pagemap(uint64_t start, uint64_t end, PageSelect sel, std::pmr::vector<PageRun>& out,
                   PageCounts& counts);

  int fd_ = -1;
  bool has_scan_ = false;
  bool force_fallback_ = false;
};

}  // namespace ocr
