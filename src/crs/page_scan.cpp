// Page-level scan of an address range (see page_scan.h). Both back ends reduce each page
// (or range of pages) to PAGE_IS_* categories and share one decision function, so the
// policy lives in one place whichever way the kernel told us about the pages.
#include "crs/page_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace ocr {
namespace {

// Categories the decision needs. PAGE_IS_FILE also makes the kernel look at each page's
// mapping (it only does for categories someone asked about).
constexpr uint64_t kReturnMask = kPageIsPresent | kPageIsSwapped | kPageIsFile | kPageIsPfnZero;

// Ranges per ioctl call (24 bytes each: 12 KiB of stack). The kernel's own bounce buffer
// is 512 entries, so a larger vector would not save calls.
constexpr size_t kScanVecLen = 512;
// Pagemap words per pread (8 bytes each: 4 KiB of stack).
constexpr size_t kPagemapBatch = 512;
// Pages per mincore call (one byte each: 4 KiB of stack, 16 MiB of address space).
constexpr size_t kMincoreBatch = 4096;

// /proc/<pid>/pagemap word (Documentation/admin-guide/mm/pagemap.rst).
constexpr uint64_t kPmPresent = 1ull << 63;
constexpr uint64_t kPmSwapped = 1ull << 62;
constexpr uint64_t kPmFileOrSharedAnon = 1ull << 61;
constexpr uint64_t kPmUffdWp = 1ull << 57;

enum class Fate { kSelected, kZero, kAbsent, kFileClean, kResident };

// What a PageSelect asks of a page, as data: the incremental step adds "must also be
// PAGE_IS_WRITTEN" as one more field here and one more test in fate().
struct Policy {
  bool keep_file_pages;  // file-backed pages (shared anon shows up as FILE too) are data
  bool probe_residency;  // absent pages may still hold data in the backing object
};

Policy policy_for(PageSelect sel) {
  switch (sel) {
    case PageSelect::kPrivateCopies:
      // Pages still shared with the page cache are restored from the file.
      return Policy{false, false};
    case PageSelect::kPresentOrResident:
      return Policy{true, true};
    case PageSelect::kPresentOrSwapped:
      break;
  }
  // Shared anonymous (shmem) pages are not PageAnon, so the kernel flags them FILE; they
  // must be saved all the same.
  return Policy{true, false};
}

Fate fate(uint64_t cats, const Policy& p) {
  if (!(cats & (kPageIsPresent | kPageIsSwapped))) return Fate::kAbsent;
  if (cats & kPageIsPfnZero) return Fate::kZero;
  if (!p.keep_file_pages && (cats & kPageIsFile)) return Fate::kFileClean;
  return Fate::kSelected;
}

uint64_t categories_from_pagemap(uint64_t pm) {
  uint64_t cats = 0;
  if (pm & kPmPresent) cats |= kPageIsPresent;
  if (pm & kPmSwapped) cats |= kPageIsSwapped;
  if (pm & kPmFileOrSharedAnon) cats |= kPageIsFile;
  // Same meaning as the ioctl's WRITTEN: a populated page not write-protected by uffd-wp.
  if ((cats & (kPageIsPresent | kPageIsSwapped)) && !(pm & kPmUffdWp)) cats |= kPageIsWritten;
  return cats;
}

// Turns (range, fate) pairs in address order into counts and merged runs.
class RunSink {
 public:
  RunSink(std::pmr::vector<PageRun>& out, PageCounts& counts)
      : out_(out), counts_(counts), first_(out.size()) {}

  void add(uint64_t addr, uint64_t npages, Fate f) {
    if (npages == 0) return;
    switch (f) {
      case Fate::kAbsent:
        counts_.absent += npages;
        return;
      case Fate::kZero:
        counts_.zero += npages;
        return;
      case Fate::kFileClean:
        counts_.file_clean += npages;
        return;
      case Fate::kResident:
        counts_.resident_only += npages;
        break;
      case Fate::kSelected:
        break;
    }
    counts_.selected += npages;
    if (out_.size() > first_) {
      PageRun& last = out_.back();
      if (last.addr + last.npages * kScanPageSize == addr) {
        last.npages += npages;
        return;
      }
    }
    out_.push_back(PageRun{addr, npages});
  }

 private:
  std::pmr::vector<PageRun>& out_;
  PageCounts& counts_;
  size_t first_;
};

// Accounts for pages our page tables do not hold. Under probe_residency, asks mincore
// whether the backing object has them in memory anyway.
int add_absent(uint64_t addr, uint64_t npages, const Policy& p, RunSink& sink) {
  if (!p.probe_residency) {
    sink.add(addr, npages, Fate::kAbsent);
    return 0;
  }
  unsigned char vec[kMincoreBatch];
  while (npages > 0) {
    const uint64_t n = npages < kMincoreBatch ? npages : kMincoreBatch;
    void* at = reinterpret_cast<void*>(addr);
    if (mincore(at, n * kScanPageSize, vec) != 0) {
      if (errno != ENOMEM) return -errno;
      // Part of the range is not mapped: ask page by page, an unmapped page holds nothing.
      for (uint64_t i = 0; i < n; ++i) {
        void* pg = reinterpret_cast<void*>(addr + i * kScanPageSize);
        if (mincore(pg, kScanPageSize, &vec[i]) != 0) vec[i] = 0;
      }
    }
    for (uint64_t i = 0; i < n; ++i)
      sink.add(addr + i * kScanPageSize, 1, (vec[i] & 1) ? Fate::kResident : Fate::kAbsent);
    addr += n * kScanPageSize;
    npages -= n;
  }
  return 0;
}

}  // namespace

PageScanner::~PageScanner() {
  if (fd_ >= 0) close(fd_);
}

int PageScanner::open_self() {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  has_scan_ = false;
  fd_ = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return -errno;
  // An empty walk: older kernels answer ENOTTY (no ioctl on pagemap), a kernel with a
  // different struct layout EINVAL; either way the pagemap file is the way.
  PmScanArg a{};
  a.size = sizeof(a);
  has_scan_ = ioctl(fd_, kPagemapScanIoctl, &a) == 0;
  return 0;
}

int PageScanner::scan(uint64_t start, uint64_t end, PageSelect sel, std::pmr::vector<PageRun>& out,
                      PageCounts& counts) {
  if (fd_ < 0) return -EBADF;
  if ((start | end) % kScanPageSize != 0 || end < start) return -EINVAL;
  if (start == end) return 0;
  if (has_pagemap_scan()) return scan_ioctl(start, end, sel, out, counts);
  return scan_pagemap(start, end, sel, out, counts);
}

int PageScanner::scan_ioctl(uint64_t start, uint64_t end, PageSelect sel,
                            std::pmr::vector<PageRun>& out, PageCounts& counts) {
  const Policy policy = policy_for(sel);
  RunSink sink(out, counts);
  PmPageRegion vec[kScanVecLen];
  uint64_t cur = start;  // everything below cur is accounted for
  while (cur < end) {
    PmScanArg a{};
    a.size = sizeof(a);
    a.start = cur;
    a.end = end;
    a.vec = reinterpret_cast<uintptr_t>(vec);
    a.vec_len = kScanVecLen;
    // category masks 0: every walked page matches, so the answer also covers what we skip.
    a.return_mask = kReturnMask;
    int n = ioctl(fd_, kPagemapScanIoctl, &a);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    const uint64_t before = cur;
    for (int i = 0; i < n && i < static_cast<int>(kScanVecLen); ++i) {
      uint64_t rs = vec[i].start, re = vec[i].end;
      if (rs < cur) rs = cur;  // never count a page twice, whatever the kernel says
      if (re > end) re = end;
      if (re <= rs) continue;
      // Pages the walk passed without reporting (no VMA, VM_PFNMAP VMA) are not in our
      // page tables.
      int rc = add_absent(cur, (rs - cur) / kScanPageSize, policy, sink);
      if (rc < 0) return rc;
      const uint64_t np = (re - rs) / kScanPageSize;
      const Fate f = fate(vec[i].categories, policy);
      if (f == Fate::kAbsent) {
        rc = add_absent(rs, np, policy, sink);
        if (rc < 0) return rc;
      } else {
        sink.add(rs, np, f);
      }
      cur = re;
    }
    uint64_t walk_end = a.walk_end > end ? end : a.walk_end;
    if (walk_end > cur) {
      int rc = add_absent(cur, (walk_end - cur) / kScanPageSize, policy, sink);
      if (rc < 0) return rc;
      cur = walk_end;
    }
    if (cur == before) return -EIO;  // no progress: do not spin
  }
  return 0;
}

int PageScanner::scan_pagemap(uint64_t start, uint64_t end, PageSelect sel,
                              std::pmr::vector<PageRun>& out, PageCounts& counts) {
  const Policy policy = policy_for(sel);
  RunSink sink(out, counts);
  uint64_t words[kPagemapBatch];
  uint64_t page = start / kScanPageSize;
  const uint64_t end_page = end / kScanPageSize;
  // Absent pages are gathered into stretches so that residency probes go by range.
  uint64_t absent_first = 0, absent_n = 0;
  while (page < end_page) {
    uint64_t want = end_page - page;
    if (want > kPagemapBatch) want = kPagemapBatch;
    ssize_t r = pread(fd_, words, want * sizeof(uint64_t), static_cast<off_t>(page * 8));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    // pagemap ends at the top of user space ([vsyscall] lies above it); the ioctl refuses
    // such ranges with EFAULT too.
    if (r == 0) return -EFAULT;
    if (r % sizeof(uint64_t) != 0) return -EIO;
    uint64_t got = static_cast<uint64_t>(r) / sizeof(uint64_t);
    for (uint64_t i = 0; i < got; ++i) {
      const Fate f = fate(categories_from_pagemap(words[i]), policy);
      if (f == Fate::kAbsent) {
        if (absent_n == 0) absent_first = page + i;
        ++absent_n;
        continue;
      }
      if (absent_n > 0) {
        int rc = add_absent(absent_first * kScanPageSize, absent_n, policy, sink);
        if (rc < 0) return rc;
        absent_n = 0;
      }
      sink.add((page + i) * kScanPageSize, 1, f);
    }
    page += got;
  }
  if (absent_n > 0) return add_absent(absent_first * kScanPageSize, absent_n, policy, sink);
  return 0;
}

}  // namespace ocr
