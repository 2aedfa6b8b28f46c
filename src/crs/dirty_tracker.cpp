// Dirty-page tracking for incremental images (see dirty_tracker.h, docs/incremental.md).
//
// All three backends reduce every page of a region to PAGEMAP_SCAN categories (PAGE_IS_*,
// read with the ioctl or, on kernels without it, derived from /proc/self/pagemap words)
// and share one decision function, classify_range(): first the same fate PageScanner
// gives a page (absent / zero page / clean file page / selected), then, for a selected
// page, "written since the last reset" or "unchanged". The backends differ only in what
// proves "unchanged": a uffd write-protect bit still set, a clear soft-dirty bit, or an
// equal content hash. Whenever the proof is not airtight the page is written.
#include "crs/dirty_tracker.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>

namespace ocr {
namespace {

// --- kernel ABI newer than Debian 12's headers (guarded: newer headers define them) ---
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)  // /dev/userfaultfd (Linux >= 6.1)
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux >= 5.14
#endif

constexpr uint64_t kPage = kScanPageSize;
// PAGE_IS_GUARD (MADV_GUARD_INSTALL regions, Linux >= 6.14). Older kernels refuse the bit
// in a mask with EINVAL, so it is only used after a probe.
constexpr uint64_t kPageIsGuard = 1ull << 8;
// Not kernel categories: set by the pagemap-file fallback, which cannot see the shared
// zero page but reports "exclusively mapped" (pagemap bit 56) instead.
constexpr uint64_t kCatFromPagemap = 1ull << 63;
constexpr uint64_t kCatExclusive = 1ull << 62;

// Ranges per PAGEMAP_SCAN call: 6 KiB of stack. A scan may nest once (settling ambiguous
// pages), so the checkpoint path needs about 18 KiB of the agent's stack at most (-fstack-usage).
constexpr size_t kScanVec = 256;
constexpr size_t kPagemapBatch = 256;
constexpr size_t kMincoreBatch = 2048;

constexpr uint64_t kStoreMagic = 0x4b52544459524944ull;  // "DIRTYTRK"

// Store layout: header, region records sorted by start, page runs (per region, sorted),
// one XXH3-64 per page of those runs, then the not-saved ranges, sorted.
struct StoreHeader {
  uint64_t magic;
  uint64_t cookie;
  uint64_t nregions, nruns, nhashes, nforced;
  uint64_t off_regions, off_runs, off_hashes, off_forced;
};
struct RegionRec {
  uint64_t start, end, offset, inode;
  uint32_t dev_major, dev_minor;
  uint64_t first_run, nruns;
};
struct RunRec {
  uint64_t addr, npages, first_hash;
};

size_t align8(size_t v) {
  return (v + 7) & ~size_t{7};
}
size_t page_round(size_t v) {
  return (v + kPage - 1) & ~size_t{kPage - 1};
}

bool fd_identity(int fd, uint64_t* dev, uint64_t* ino) {
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return false;
  *dev = st.st_dev;
  *ino = st.st_ino;
  return true;
}

uint64_t cats_from_pagemap(uint64_t w) {
  uint64_t c = kCatFromPagemap;
  if (w & (1ull << 63)) c |= kPageIsPresent;
  if (w & (1ull << 62)) c |= kPageIsSwapped;
  if (w & (1ull << 61)) c |= kPageIsFile;
  if (w & (1ull << 58)) c |= kPageIsGuard;  // PM_GUARD_REGION; 0 on older kernels
  if (w & (1ull << 56)) c |= kCatExclusive;
  if (w & (1ull << 55)) c |= kPageIsSoftDirty;
  // Same meaning as the ioctl's WRITTEN: populated and not uffd-write-protected.
  if ((c & (kPageIsPresent | kPageIsSwapped)) && !(w & (1ull << 57))) c |= kPageIsWritten;
  return c;
}

// Merges runs appended by one scan_region call (never across calls: per-region
// bookkeeping in the writer stays exact).
class Sink {
 public:
  explicit Sink(std::pmr::vector<PageRun>& out) : out_(out), first_(out.size()) {}
  void add(uint64_t addr, uint64_t npages) {
    if (npages == 0) return;
    if (out_.size() > first_) {
      PageRun& last = out_.back();
      if (last.addr + last.npages * kPage == addr) {
        last.npages += npages;
        return;
      }
    }
    out_.push_back(PageRun{addr, npages});
  }

 private:
  std::pmr::vector<PageRun>& out_;
  size_t first_;
};

int open_uffd(bool user_mode_only, bool* used_umo, std::string* why) {
  const int base = O_CLOEXEC | O_NONBLOCK;
  int fd = -1;
  *used_umo = user_mode_only;
  if (!user_mode_only) fd = static_cast<int>(syscall(SYS_userfaultfd, base));
  if (fd < 0 && (user_mode_only || errno == EPERM)) {
    // vm.unprivileged_userfaultfd=0: an unprivileged process may still handle faults of
    // its own user-mode accesses. Async write-protect never delivers a fault, so nothing
    // is lost (kernel-mode writes such as read(2) into a tracked buffer are resolved in
    // the kernel all the same).
    fd = static_cast<int>(syscall(SYS_userfaultfd, base | UFFD_USER_MODE_ONLY));
    *used_umo = true;
  }
  if (fd < 0 && (errno == EPERM || errno == ENOSYS)) {
    // /dev/userfaultfd grants the same by file permission (Linux >= 6.1).
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) {
      fd = ioctl(dev, USERFAULTFD_IOC_NEW, base);
      *used_umo = false;
      close(dev);
    }
  }
  if (fd < 0) {
    if (why) *why = std::string("userfaultfd: ") + strerror(errno);
    return -1;
  }
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
  if (ioctl(fd, UFFDIO_API, &api) != 0) {
    if (why)
      *why =
          std::string("userfaultfd lacks UFFD_FEATURE_WP_ASYNC|WP_UNPOPULATED (Linux >= 6.7): ") +
          strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

// PAGEMAP_SCAN write-protect of the populated private copies in [start,end): present or
// swapped pages that are not page-cache pages. Holes stay holes: with WP_UNPOPULATED the
// kernel would put a uffd-wp marker into every empty PTE, which PAGEMAP_SCAN and
// /proc/self/pagemap report as a *swapped* page (verified on 6.18), and which costs page
// tables over the whole range. Clean page-cache pages need no protection either: writing
// one makes a private copy without the bit, and zapping one leaves an empty PTE rather
// than a marker.
int wp_range(int pagemap_fd, uint64_t start, uint64_t end, bool anon) {
  PmPageRegion vec[kScanVec];
  uint64_t cur = start;
  while (cur < end) {
    PmScanArg a{};
    a.size = sizeof a;
    a.flags = kPmScanWpMatching | kPmScanCheckWpAsync;
    a.start = cur;
    a.end = end;
    // An output vector keeps the kernel off its "protect everything" fast path, which
    // ignores the category filter.
    a.vec = reinterpret_cast<uintptr_t>(vec);
    a.vec_len = kScanVec;
    // Only pages written since the last protection (the rest keep their bit), and in file
    // mappings only private copies: asking for FILE makes the kernel look up every page.
    a.category_inverted = anon ? 0 : kPageIsFile;
    a.category_mask = kPageIsWritten | (anon ? 0 : kPageIsFile);
    a.category_anyof_mask = kPageIsPresent | kPageIsSwapped;
    a.return_mask = kPageIsWpAllowed;
    int n = ioctl(pagemap_fd, kPagemapScanIoctl, &a);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (a.walk_end <= cur) return -EIO;
    cur = a.walk_end;
  }
  return 0;
}

// End-to-end check of the uffd mechanism on a scratch mapping: some kernels accept the
// features but PAGEMAP_SCAN misbehaves (or is filtered by a seccomp policy).
bool uffd_self_test(int uffd, int pagemap_fd, std::string* why) {
  const size_t n = 4;
  char* p = static_cast<char*>(
      mmap(nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) {
    if (why) *why = std::string("mmap: ") + strerror(errno);
    return false;
  }
  for (size_t i = 0; i < n; i++) p[i * kPage] = 1;
  bool ok = false;
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<uintptr_t>(p);
  reg.range.len = n * kPage;
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
    if (why) *why = std::string("UFFDIO_REGISTER (write-protect mode): ") + strerror(errno);
  } else if (int e = wp_range(pagemap_fd, reg.range.start, reg.range.start + n * kPage, true)) {
    if (why) *why = std::string("PAGEMAP_SCAN write-protect: ") + strerror(-e);
  } else {
    p[2 * kPage] = 2;
    PmPageRegion vec[8];
    PmScanArg a{};
    a.size = sizeof a;
    a.start = reg.range.start;
    a.end = reg.range.start + n * kPage;
    a.vec = reinterpret_cast<uintptr_t>(vec);
    a.vec_len = 8;
    a.category_mask = kPageIsWritten | kPageIsPresent;
    a.return_mask = kPageIsWritten;
    int r = ioctl(pagemap_fd, kPagemapScanIoctl, &a);
    ok = r == 1 && vec[0].start == reg.range.start + 2 * kPage &&
         vec[0].end == reg.range.start + 3 * kPage;
    if (!ok && why) *why = "self-test: PAGEMAP_SCAN did not report exactly the written page";
    uffdio_range rg{reg.range.start, n * kPage};
    ioctl(uffd, UFFDIO_UNREGISTER, &rg);
  }
  munmap(p, n * kPage);
  return ok;
}

uint64_t make_cookie() {
  uint64_t c = 0;
  if (getrandom(&c, sizeof c, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof c)) {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    c = static_cast<uint64_t>(ts.tv_nsec) * 0x9e3779b97f4a7c15ull ^ static_cast<uint64_t>(getpid());
  }
  return c | 1;
}

}  // namespace

// ------------------------------------------------------------------------------------------

const char* dirty_backend_name(DirtyBackend b) {
  switch (b) {
    case DirtyBackend::kUffdWp:
      return "uffd";
    case DirtyBackend::kSoftDirty:
      return "softdirty";
    case DirtyBackend::kHash:
      return "hash";
    case DirtyBackend::kNone:
      break;
  }
  return "none";
}

bool parse_dirty_backend(std::string_view s, DirtyBackend* out) {
  if (s == "uffd")
    *out = DirtyBackend::kUffdWp;
  else if (s == "softdirty")
    *out = DirtyBackend::kSoftDirty;
  else if (s == "hash")
    *out = DirtyBackend::kHash;
  else if (s == "none" || s == "off")
    *out = DirtyBackend::kNone;
  else
    return false;
  return true;
}

bool dirty_tracking_eligible(const MapEntry& m, const RegionClass& c) {
  if (m.shared || m.has_vm_flag(OCR_VMF_SHARED | OCR_VMF_MAYSHARE)) return false;
  return c.kind == OCR_REGION_ANON_PRIVATE || c.kind == OCR_REGION_FILE_PRIVATE;
}

// Per-scan state: where the verdicts go and what the hash backend compares against.
struct DirtyTracker::Walk {
  const MapEntry* m;
  PageSelect sel;
  bool file_vma;  // not plain anonymous memory: uffd-wp markers are possible
  bool readable;
  Sink written, unchanged;
  PageCounts* counts;
  const RunRec* runs = nullptr;  // hash backend: the region's runs at the last reset
  uint64_t nruns = 0;
  uint64_t run = 0;  // cursor: addresses only grow during a scan
  const uint64_t* hashes = nullptr;
  const DirtyRange* forced = nullptr;  // not saved in the parent: never inherited
  uint64_t nforced = 0;
  uint64_t rmask = 0;
  uint64_t flags = 0;

  Walk(const MapEntry& e, PageSelect s, std::pmr::vector<PageRun>& w, std::pmr::vector<PageRun>& u,
       PageCounts& c)
      : m(&e),
        sel(s),
        file_vma(e.inode != 0),
        readable((e.prot & PROT_READ) != 0),
        written(w),
        unchanged(u),
        counts(&c) {}

  void emit_written(uint64_t addr, uint64_t n) {
    written.add(addr, n);
    counts->selected += n;
  }
  void emit_unchanged(uint64_t addr, uint64_t n) {
    counts->selected += n;
    const uint64_t end = addr + n * kPage;
    // First not-saved range that ends after addr.
    const DirtyRange* f = std::upper_bound(
        forced, forced + nforced, addr, [](uint64_t a, const DirtyRange& r) { return a < r.end; });
    uint64_t cur = addr;
    for (; f != forced + nforced && f->start < end && cur < end; ++f) {
      const uint64_t fs = std::max(f->start, cur), fe = std::min(f->end, end);
      if (fs > cur) unchanged.add(cur, (fs - cur) / kPage);
      if (fe > fs) written.add(fs, (fe - fs) / kPage);
      cur = std::max(cur, fe);
    }
    if (cur < end) unchanged.add(cur, (end - cur) / kPage);
  }
};

DirtyTracker::~DirtyTracker() {
  release_all();
}

bool DirtyTracker::probe(DirtyBackend b, std::string* why) {
  DirtyTracker t;
  return b == DirtyBackend::kNone || t.open_backend(b, why);
}

bool DirtyTracker::init(std::string* error) {
  const char* env = getenv("OMPI_CR_DIRTY_TRACKING");
  if (env && *env && strcmp(env, "auto") != 0) {
    DirtyBackend want;
    if (!parse_dirty_backend(env, &want)) {
      release_all();
      if (error)
        *error = std::string("OMPI_CR_DIRTY_TRACKING=") + env +
                 ": unknown dirty-tracking backend (use uffd, softdirty, hash or none)";
      return false;
    }
    std::string why;
    if (init_backend(want, &why)) return true;
    if (error) *error = std::string("OMPI_CR_DIRTY_TRACKING=") + env + ": " + why;
    return false;
  }
  release_all();
  for (DirtyBackend b : {DirtyBackend::kUffdWp, DirtyBackend::kSoftDirty, DirtyBackend::kHash}) {
    if (open_backend(b, nullptr)) {
      backend_ = b;
      return true;
    }
  }
  backend_ = DirtyBackend::kNone;  // no /proc at all: full images only
  return true;
}

bool DirtyTracker::init_backend(DirtyBackend want, std::string* error) {
  release_all();
  if (want == DirtyBackend::kNone) return true;
  std::string why;
  if (!open_backend(want, &why)) {
    if (error)
      *error = std::string("dirty tracking '") + dirty_backend_name(want) + "' unavailable: " + why;
    return false;
  }
  backend_ = want;
  return true;
}

// Opens what `b` needs and checks that the kernel really does it. On failure everything
// opened is closed again. Allocates only for *why (nullptr on the parked path).
bool DirtyTracker::open_backend(DirtyBackend b, std::string* why) {
  auto fail = [&](const char* what) {
    if (why && what) *why = std::string(what) + ": " + strerror(errno);
    for (Fd* f : {&uffd_, &pagemap_, &mem_, &clear_refs_}) {
      if (f->fd >= 0) close(f->fd);
      *f = Fd{};
    }
    return false;
  };
  auto open_fd = [](Fd& f, const char* path, int flags) {
    f.fd = open(path, flags | O_CLOEXEC);
    return f.fd >= 0 && fd_identity(f.fd, &f.dev, &f.ino);
  };
  pid_ = static_cast<int>(getpid());
  if (!open_fd(pagemap_, "/proc/self/pagemap", O_RDONLY)) return fail("/proc/self/pagemap");
  {
    PmScanArg a{};
    a.size = sizeof a;
    has_scan_ = !force_pagemap_ && ioctl(pagemap_.fd, kPagemapScanIoctl, &a) == 0;
    a.return_mask = kPageIsGuard;
    has_guard_ = has_scan_ && ioctl(pagemap_.fd, kPagemapScanIoctl, &a) == 0;
    a.return_mask = kPageIsSoftDirty;
    has_sd_cat_ = has_scan_ && ioctl(pagemap_.fd, kPagemapScanIoctl, &a) == 0;
  }
  switch (b) {
    case DirtyBackend::kUffdWp: {
      if (!has_scan_) {
        errno = ENOTTY;
        return fail("the PAGEMAP_SCAN ioctl (Linux >= 6.7) is missing");
      }
      if (!open_fd(mem_, "/proc/self/mem", O_RDONLY)) return fail("/proc/self/mem");
      std::string w;
      uffd_.fd = open_uffd(force_user_mode_only_, &user_mode_only_, why ? &w : nullptr);
      if (uffd_.fd < 0) {
        if (why) *why = w;
        return fail(nullptr);
      }
      fd_identity(uffd_.fd, &uffd_.dev, &uffd_.ino);
      if (!uffd_self_test(uffd_.fd, pagemap_.fd, why ? &w : nullptr)) {
        if (why) *why = w;
        return fail(nullptr);
      }
      return true;
    }
    case DirtyBackend::kSoftDirty: {
      if (!open_fd(clear_refs_, "/proc/self/clear_refs", O_WRONLY))
        return fail("/proc/self/clear_refs");
      // The write succeeds on kernels without CONFIG_MEM_SOFT_DIRTY too: only the bit
      // itself tells. Clear, check clear; write, check set.
      char* p = static_cast<char*>(
          mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
      if (p == MAP_FAILED) return fail("mmap");
      *static_cast<volatile char*>(p) = 1;
      uint64_t before = 0, after = 0;
      const off_t off = static_cast<off_t>(reinterpret_cast<uintptr_t>(p) / kPage * 8);
      bool io = write(clear_refs_.fd, "4", 1) == 1 && pread(pagemap_.fd, &before, 8, off) == 8;
      *static_cast<volatile char*>(p) = 2;
      io = io && pread(pagemap_.fd, &after, 8, off) == 8;
      munmap(p, kPage);
      if (!io) return fail("soft-dirty probe");
      if ((before & (1ull << 55)) || !(after & (1ull << 55))) {
        if (why)
          *why =
              "no soft-dirty tracking in this kernel (CONFIG_MEM_SOFT_DIRTY off: pagemap bit 55 "
              "stays clear after a write)";
        return fail(nullptr);
      }
      return true;
    }
    case DirtyBackend::kHash:
      if (!open_fd(mem_, "/proc/self/mem", O_RDONLY)) return fail("/proc/self/mem");
      return true;
    case DirtyBackend::kNone:
      break;
  }
  return true;
}

void DirtyTracker::release_all() {
  const bool same_process = pid_ == static_cast<int>(getpid());
  for (Fd* f : {&uffd_, &pagemap_, &mem_, &clear_refs_}) {
    uint64_t dev, ino;
    // Close only a descriptor that is still the one we opened (a restored process or an
    // application that closed ours may have that number in use for something else). In a
    // forked child the inherited copy is ours to close.
    if (f->fd >= 0 && fd_identity(f->fd, &dev, &ino) && dev == f->dev && ino == f->ino)
      close(f->fd);
    *f = Fd{};
  }
  if (store_ && same_process) {
    unsigned char v;
    const auto* h = reinterpret_cast<const StoreHeader*>(store_);
    if (mincore(store_, kPage, &v) == 0 && h->magic == kStoreMagic && h->cookie == cookie_)
      munmap(store_, store_cap_);
  }
  store_ = nullptr;
  store_cap_ = 0;
  backend_ = DirtyBackend::kNone;
  armed_ = false;
  user_mode_only_ = false;
}

void DirtyTracker::forget_after_restore() {
  for (Fd* f : {&uffd_, &pagemap_, &mem_, &clear_refs_}) *f = Fd{};
  store_ = nullptr;
  store_cap_ = 0;
  backend_ = DirtyBackend::kNone;
  armed_ = false;
  pid_ = 0;
}

void DirtyTracker::forget_store() {
  store_ = nullptr;
  store_cap_ = 0;
}

bool DirtyTracker::fds_ok() const {
  if (pid_ != static_cast<int>(getpid())) return false;
  for (const Fd* f : {&uffd_, &pagemap_, &mem_, &clear_refs_}) {
    if (f->fd < 0) continue;
    uint64_t dev, ino;
    if (!fd_identity(f->fd, &dev, &ino) || dev != f->dev || ino != f->ino) return false;
  }
  return pagemap_.fd >= 0;
}

// In a forked child the descriptors still refer to the parent: /proc/self/pagemap was
// bound to the parent's mm when it was opened, and the userfaultfd context registers
// ranges in the parent's address space. Using them would write-protect the parent's pages
// behind its back. Reopen (syscalls only) and start over; same when the application
// closed or replaced our descriptors.
int DirtyTracker::reopen_if_needed() {
  if (fds_ok()) return 0;
  const DirtyBackend b = backend_;
  const bool forked = pid_ != static_cast<int>(getpid());
  if (forked) forget_store();  // MADV_DONTFORK: not mapped here, or mapped by someone else
  unsigned char* keep_store = store_;
  const size_t keep_cap = store_cap_;
  store_ = nullptr;  // release_all must not unmap the store of this same process
  release_all();
  store_ = keep_store;
  store_cap_ = keep_cap;
  if (b == DirtyBackend::kNone) return -EBADF;
  if (!open_backend(b, nullptr)) return -EBADF;
  backend_ = b;
  return 0;
}

int DirtyTracker::ensure_store(size_t bytes) {
  if (store_ && bytes <= store_cap_ && (store_cap_ <= (size_t{1} << 20) || bytes * 4 > store_cap_))
    return 0;
  if (store_) munmap(store_, store_cap_);
  store_ = nullptr;
  store_cap_ = 0;
  const size_t cap = page_round(std::max(bytes + bytes / 4, size_t{64} << 10));
  void* p = mmap(nullptr, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) return -errno;
  // Distinct VmFlags keep the kernel from merging the store with an adjacent application
  // mapping (the writer skips whole regions that overlap runtime areas). DONTFORK: a child
  // starts over anyway (see reopen_if_needed) and should not copy the hashes.
  madvise(p, cap, MADV_DONTDUMP);
  madvise(p, cap, MADV_DONTFORK);
  store_ = static_cast<unsigned char*>(p);
  store_cap_ = cap;
  if (cookie_ == 0) cookie_ = make_cookie();
  auto* h = reinterpret_cast<StoreHeader*>(store_);
  const size_t off = align8(sizeof(StoreHeader));
  *h = StoreHeader{kStoreMagic, cookie_, 0, 0, 0, 0, off, off, off, off};
  return 0;
}

const void* DirtyTracker::find_region(const MapEntry& m) const {
  if (!store_) return nullptr;
  const auto* h = reinterpret_cast<const StoreHeader*>(store_);
  const auto* regs = reinterpret_cast<const RegionRec*>(store_ + h->off_regions);
  const RegionRec* e = regs + h->nregions;
  const RegionRec* r = std::lower_bound(regs, e, m.start,
                                        [](const RegionRec& x, uint64_t s) { return x.start < s; });
  if (r == e || r->start != m.start || r->end != m.end || r->offset != m.offset ||
      r->inode != m.inode || r->dev_major != m.dev_major || r->dev_minor != m.dev_minor)
    return nullptr;
  return r;
}

// 1: the VMA at [start,end) is registered with our userfaultfd. Registering again with the
// same mode is a no-op for our own VMAs; another context's VMA answers EBUSY.
int DirtyTracker::uffd_owns(uint64_t start, uint64_t end) const {
  uffdio_register reg{};
  reg.range.start = start;
  reg.range.len = end - start;
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  return ioctl(uffd_.fd, UFFDIO_REGISTER, &reg) == 0 ? 1 : 0;
}

bool DirtyTracker::region_tracked(const MapEntry& m) const {
  if (!armed_ || m.end <= m.start || m.shared || !fds_ok()) return false;
  switch (backend_) {
    case DirtyBackend::kUffdWp:
      // "uw" alone could be another userfaultfd of the application; the owner check needs
      // the flag first so that it never registers anything new.
      return m.has_vm_flag(OCR_VMF_UFFD_WP) && uffd_owns(m.start, m.end) == 1;
    case DirtyBackend::kSoftDirty:
      // The kernel sets VM_SOFTDIRTY ("sd") on every VMA created or expanded since the last
      // clear: a region mmap'd anew at the same place shows it.
      return !m.has_vm_flag(OCR_VMF_SOFTDIRTY) && find_region(m) != nullptr;
    case DirtyBackend::kHash:
      // Cannot tell a region replaced by an identical mapping at the same place (anonymous
      // VMAs get the same offset again). Harmless: the verdicts compare content with what
      // was at these addresses when the parent image was taken.
      return find_region(m) != nullptr;
    case DirtyBackend::kNone:
      break;
  }
  return false;
}

int DirtyTracker::walk_range(uint64_t start, uint64_t end, uint64_t rmask, uint64_t flags,
                             int (*fn)(void*, uint64_t, uint64_t, uint64_t), void* ctx) const {
  // A kernel whose PAGEMAP_SCAN predates the SOFT_DIRTY category refuses the mask.
  if (has_scan_ && (has_sd_cat_ || !(rmask & kPageIsSoftDirty))) {
    PmPageRegion vec[kScanVec];
    uint64_t cur = start;  // everything below cur has been handed to fn
    while (cur < end) {
      PmScanArg a{};
      a.size = sizeof a;
      a.flags = flags;
      a.start = cur;
      a.end = end;
      a.vec = reinterpret_cast<uintptr_t>(vec);
      a.vec_len = kScanVec;
      a.return_mask = rmask;  // category masks 0: every walked page is reported
      int n = ioctl(pagemap_.fd, kPagemapScanIoctl, &a);
      if (n < 0) {
        if (errno == EINTR) continue;
        return -errno;
      }
      const uint64_t before = cur;
      for (int i = 0; i < n && i < static_cast<int>(kScanVec); ++i) {
        const uint64_t rs = std::max(vec[i].start, cur), re = std::min(vec[i].end, end);
        if (re <= rs) continue;
        // Pages the walk passed without a word (no VMA, VM_PFNMAP) hold nothing of ours.
        if (rs > cur)
          if (int rc = fn(ctx, cur, (rs - cur) / kPage, 0)) return rc;
        if (int rc = fn(ctx, rs, (re - rs) / kPage, vec[i].categories)) return rc;
        cur = re;
      }
      const uint64_t we = std::min<uint64_t>(a.walk_end, end);
      if (we > cur) {
        if (int rc = fn(ctx, cur, (we - cur) / kPage, 0)) return rc;
        cur = we;
      }
      if (cur == before) return -EIO;  // no progress: do not spin
    }
    return 0;
  }
  // /proc/self/pagemap: one word per page, coalesced into ranges of equal categories.
  uint64_t words[kPagemapBatch];
  uint64_t page = start / kPage;
  const uint64_t end_page = end / kPage;
  uint64_t run_first = page, run_n = 0, run_cats = 0;
  while (page < end_page) {
    const uint64_t want = std::min<uint64_t>(end_page - page, kPagemapBatch);
    ssize_t r = pread(pagemap_.fd, words, want * 8, static_cast<off_t>(page * 8));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return -EFAULT;
    if (r % 8 != 0) return -EIO;
    const uint64_t got = static_cast<uint64_t>(r) / 8;
    for (uint64_t i = 0; i < got; ++i) {
      const uint64_t c = cats_from_pagemap(words[i]) & (rmask | kCatFromPagemap | kCatExclusive);
      if (run_n > 0 && c == run_cats) {
        ++run_n;
        continue;
      }
      if (run_n > 0)
        if (int rc = fn(ctx, run_first * kPage, run_n, run_cats)) return rc;
      run_first = page + i;
      run_n = 1;
      run_cats = c;
    }
    page += got;
  }
  if (run_n > 0) return fn(ctx, run_first * kPage, run_n, run_cats);
  return 0;
}

namespace {

// Context of the walk callbacks (captureless lambdas inside member functions, which may
// use the private Walk type; here it is opaque).
struct ClassifyCtx {
  DirtyTracker* self;
  void* walk;
  bool may_resolve;
};

}  // namespace

// The one decision: fate of pages [addr, addr+npages) with categories `cats`.
int DirtyTracker::classify_range(Walk& w, uint64_t addr, uint64_t npages, uint64_t cats,
                                 bool may_resolve) {
  PageCounts& c = *w.counts;
  if (cats & kPageIsGuard) {  // MADV_GUARD_INSTALL: no page, reads fault
    c.absent += npages;
    return 0;
  }
  if (!(cats & (kPageIsPresent | kPageIsSwapped))) {
    if (w.sel != PageSelect::kPresentOrResident) {
      c.absent += npages;
      return 0;
    }
    // Deleted-file mappings: pages the backing object holds but our page tables do not.
    // Nothing proves them unchanged: written.
    unsigned char vec[kMincoreBatch];
    while (npages > 0) {
      const uint64_t n = std::min<uint64_t>(npages, kMincoreBatch);
      if (mincore(reinterpret_cast<void*>(addr), n * kPage, vec) != 0) {
        if (errno != ENOMEM) return -errno;
        for (uint64_t i = 0; i < n; ++i)
          if (mincore(reinterpret_cast<void*>(addr + i * kPage), kPage, &vec[i]) != 0) vec[i] = 0;
      }
      for (uint64_t i = 0; i < n; ++i) {
        if (vec[i] & 1) {
          c.resident_only += 1;
          w.emit_written(addr + i * kPage, 1);
        } else {
          c.absent += 1;
        }
      }
      addr += n * kPage;
      npages -= n;
    }
    return 0;
  }
  if (cats & kPageIsPfnZero) {
    c.zero += npages;
    return 0;
  }
  if (w.sel == PageSelect::kPrivateCopies && (cats & kPageIsFile)) {
    c.file_clean += npages;
    return 0;
  }
  // Selected: written or unchanged.
  switch (backend_) {
    case DirtyBackend::kUffdWp:
      if (cats & kPageIsWritten) {
        w.emit_written(addr, npages);
      } else if (cats & kPageIsFile) {
        // Page-cache pages are never write-protected by reset(); one carrying the bit was
        // faulted in over a marker left where a protected private copy was zapped: its
        // bytes are the file's, not the parent's.
        w.emit_written(addr, npages);
      } else if (cats & kPageIsPresent) {
        w.emit_unchanged(addr, npages);
      } else if (!w.file_vma) {
        // Anonymous memory gets no markers (reset() protects populated pages only and a
        // zap empties the PTE): a swapped or migrating page that keeps the bit.
        w.emit_unchanged(addr, npages);
      } else if (may_resolve) {
        return settle_ambiguous(w, addr, npages);
      } else {
        w.emit_written(addr, npages);
      }
      return 0;
    case DirtyBackend::kSoftDirty:
      if ((cats & (kPageIsSoftDirty | kPageIsFile)) ||
          // pagemap cannot show the shared zero page (a zapped page read back in is one,
          // not dirty): only an exclusively mapped page is surely private data.
          ((cats & kCatFromPagemap) && (cats & kPageIsPresent) && !(cats & kCatExclusive)))
        w.emit_written(addr, npages);
      else
        w.emit_unchanged(addr, npages);
      return 0;
    case DirtyBackend::kHash:
      return hash_compare(w, addr, npages);
    case DirtyBackend::kNone:
      break;
  }
  w.emit_written(addr, npages);
  return 0;
}

// Hash backend: a selected page is unchanged iff it had a hash at the last reset and its
// bytes still hash the same. Out of line: its page buffer stays off the common path's stack.
__attribute__((noinline)) int DirtyTracker::hash_compare(Walk& w, uint64_t addr, uint64_t npages) {
  char buf[kPage];
  for (uint64_t i = 0; i < npages; ++i) {
    const uint64_t p = addr + i * kPage;
    while (w.run < w.nruns && w.runs[w.run].addr + w.runs[w.run].npages * kPage <= p) ++w.run;
    if (w.run >= w.nruns || w.runs[w.run].addr > p) {  // not present at reset: new
      w.emit_written(p, 1);
      continue;
    }
    const void* bytes = reinterpret_cast<const void*>(p);
    if (!w.readable) {
      // PROT_NONE / write-only: /proc/self/mem reads with FOLL_FORCE.
      if (pread(mem_.fd, buf, kPage, static_cast<off_t>(p)) != static_cast<ssize_t>(kPage)) {
        w.emit_written(p, 1);
        continue;
      }
      bytes = buf;
    }
    const uint64_t old = w.hashes[w.runs[w.run].first_hash + (p - w.runs[w.run].addr) / kPage];
    if (XXH3_64bits(bytes, kPage) == old)
      w.emit_unchanged(p, 1);
    else
      w.emit_written(p, 1);
  }
  return 0;
}

// Swapped-looking, write-protected pages of a file-backed region are either a private copy
// that was swapped out (or is migrating) and not written, or a uffd-wp marker that the
// kernel put where it zapped a protected private copy (MADV_DONTNEED, truncation): then the
// page is the file's again. PAGEMAP_SCAN reports both alike. Reading the pages in tells
// them apart: a marker turns into the page-cache page (FILE), a swap entry into the
// private copy with its bit. A page that cannot be read at all (beyond EOF) holds nothing
// the process could see either: absent.
int DirtyTracker::settle_ambiguous(Walk& w, uint64_t addr, uint64_t npages) {
  auto rewalk = [&](uint64_t a, uint64_t n) -> int {
    if (n == 0) return 0;
    ClassifyCtx cc{this, &w, false};
    return walk_range(
        a, a + n * kPage, w.rmask, 0,
        [](void* p, uint64_t ra, uint64_t rn, uint64_t rc) {
          auto* x = static_cast<ClassifyCtx*>(p);
          return x->self->classify_range(*static_cast<Walk*>(x->walk), ra, rn, rc, x->may_resolve);
        },
        &cc);
  };
  if (madvise(reinterpret_cast<void*>(addr), npages * kPage, MADV_POPULATE_READ) == 0)
    return rewalk(addr, npages);
  // Not readable (PROT_NONE), or some page faults: page by page through /proc/self/mem.
  uint64_t ok_first = addr, ok_n = 0;
  for (uint64_t i = 0; i < npages; ++i) {
    const uint64_t p = addr + i * kPage;
    char b;
    if (pread(mem_.fd, &b, 1, static_cast<off_t>(p)) == 1) {
      if (ok_n == 0) ok_first = p;
      ++ok_n;
      continue;
    }
    if (int rc = rewalk(ok_first, ok_n)) return rc;
    ok_n = 0;
    w.counts->absent += 1;
  }
  return rewalk(ok_first, ok_n);
}

int DirtyTracker::scan_region(const MapEntry& m, PageSelect sel, std::pmr::vector<PageRun>& written,
                              std::pmr::vector<PageRun>& unchanged, PageCounts& counts,
                              std::pmr::memory_resource* mr) {
  (void)mr;  // the verdicts go straight into the caller's vectors
  if ((m.start | m.end) % kPage != 0 || m.end < m.start) return -EINVAL;
  if (!armed_ || backend_ == DirtyBackend::kNone || !fds_ok()) return -ESTALE;
  if (m.start == m.end) return 0;
  Walk w(m, sel, written, unchanged, counts);
  const uint64_t guard = has_guard_ ? kPageIsGuard : 0;
  const uint64_t file = (w.file_vma || sel == PageSelect::kPrivateCopies) ? kPageIsFile : 0;
  switch (backend_) {
    case DirtyBackend::kUffdWp:
      if (!m.has_vm_flag(OCR_VMF_UFFD_WP) || uffd_owns(m.start, m.end) != 1) return -ESTALE;
      w.rmask = kPageIsPresent | kPageIsSwapped | kPageIsWritten | kPageIsPfnZero | file | guard;
      // Fails with EPERM if any part of the range is not registered in async WP mode.
      w.flags = kPmScanCheckWpAsync;
      break;
    case DirtyBackend::kSoftDirty:
      if (!find_region(m)) return -ESTALE;
      w.rmask = kPageIsPresent | kPageIsSwapped | kPageIsSoftDirty | kPageIsPfnZero | file | guard;
      break;
    case DirtyBackend::kHash: {
      const auto* r = static_cast<const RegionRec*>(find_region(m));
      if (!r) return -ESTALE;
      const auto* h = reinterpret_cast<const StoreHeader*>(store_);
      w.runs = reinterpret_cast<const RunRec*>(store_ + h->off_runs) + r->first_run;
      w.nruns = r->nruns;
      w.hashes = reinterpret_cast<const uint64_t*>(store_ + h->off_hashes);
      w.rmask = kPageIsPresent | kPageIsSwapped | kPageIsPfnZero | file | guard;
      break;
    }
    case DirtyBackend::kNone:
      return -ESTALE;
  }
  if (store_) {
    const auto* h = reinterpret_cast<const StoreHeader*>(store_);
    w.forced = reinterpret_cast<const DirtyRange*>(store_ + h->off_forced);
    w.nforced = h->nforced;
  }
  ClassifyCtx cc{this, &w, true};
  int rc = walk_range(
      m.start, m.end, w.rmask, w.flags,
      [](void* p, uint64_t a, uint64_t n, uint64_t c) {
        auto* x = static_cast<ClassifyCtx*>(p);
        return x->self->classify_range(*static_cast<Walk*>(x->walk), a, n, c, x->may_resolve);
      },
      &cc);
  if (rc == -EPERM && backend_ == DirtyBackend::kUffdWp) return -ESTALE;
  return rc;
}

// --- reset -----------------------------------------------------------------------------

int DirtyTracker::reset(const std::pmr::vector<MapEntry>& maps,
                        const std::pmr::vector<bool>& eligible, std::pmr::memory_resource* mr,
                        const DirtyRange* not_saved, size_t n_not_saved) {
  armed_ = false;
  stats_ = ResetStats{};
  if (backend_ == DirtyBackend::kNone) return 0;
  if (eligible.size() != maps.size()) return -EINVAL;
  if (int e = reopen_if_needed()) return e;
  int rc = backend_ == DirtyBackend::kUffdWp
               ? reset_uffd(maps, eligible)
               : reset_recorded(maps, eligible, mr, not_saved, n_not_saved);
  if (rc == 0 && backend_ == DirtyBackend::kUffdWp) rc = store_forced(not_saved, n_not_saved);
  if (rc != 0) return rc;
  armed_ = true;
  return 0;
}

int DirtyTracker::reset_uffd(const std::pmr::vector<MapEntry>& maps,
                             const std::pmr::vector<bool>& eligible) {
  for (size_t i = 0; i < maps.size(); ++i) {
    const MapEntry& m = maps[i];
    if (m.end <= m.start) continue;
    uffdio_range rg{m.start, m.end - m.start};
    if (!eligible[i]) {
      // Registered at an earlier reset but not protected now: it must never pass for
      // tracked (its pages' bits are from an older generation). Unregistering clears them.
      // EINVAL: not ours (another userfaultfd of the application), left alone.
      if (m.has_vm_flag(OCR_VMF_UFFD_WP)) {
        if (ioctl(uffd_.fd, UFFDIO_UNREGISTER, &rg) == 0)
          ++stats_.regions_released;
        else if (errno != EINVAL)
          return -errno;
      }
      continue;
    }
    // A no-op for regions that are ours already. Refusals (another userfaultfd owns it:
    // EBUSY; VM_DROPPABLE or no VM_MAYWRITE: EINVAL/EPERM; ENOMEM) leave it untracked.
    uffdio_register reg{};
    reg.range.start = m.start;
    reg.range.len = m.end - m.start;
    reg.mode = UFFDIO_REGISTER_MODE_WP;
    if (ioctl(uffd_.fd, UFFDIO_REGISTER, &reg) != 0) {
      ++stats_.regions_refused;
      continue;
    }
    if (wp_range(pagemap_.fd, m.start, m.end, m.inode == 0) != 0) {
      // Partly protected is worse than not at all: drop the registration (and the bits).
      if (ioctl(uffd_.fd, UFFDIO_UNREGISTER, &rg) != 0) return -errno;
      ++stats_.regions_refused;
      continue;
    }
    ++stats_.regions_tracked;
  }
  return 0;
}

// Keeps the not-saved ranges (uffd backend: the store holds nothing else).
int DirtyTracker::store_forced(const DirtyRange* not_saved, size_t n) {
  const size_t off_forced = align8(sizeof(StoreHeader));
  if (n == 0 && !store_) return 0;
  if (int e = ensure_store(off_forced + n * sizeof(DirtyRange))) return e;
  auto* h = reinterpret_cast<StoreHeader*>(store_);
  *h =
      StoreHeader{kStoreMagic, cookie_, 0, 0, 0, n, off_forced, off_forced, off_forced, off_forced};
  auto* f = reinterpret_cast<DirtyRange*>(store_ + off_forced);
  for (size_t i = 0; i < n; ++i) f[i] = not_saved[i];
  std::sort(f, f + n, [](const DirtyRange& a, const DirtyRange& b) { return a.start < b.start; });
  return 0;
}

namespace {

struct GatherCtx {
  std::pmr::vector<RunRec>* runs;
  uint64_t first_run;  // of the current region
  uint64_t pages = 0;
  bool skip_file;
};

}  // namespace

int DirtyTracker::reset_recorded(const std::pmr::vector<MapEntry>& maps,
                                 const std::pmr::vector<bool>& eligible,
                                 std::pmr::memory_resource* mr, const DirtyRange* not_saved,
                                 size_t n_not_saved) {
  const bool hash = backend_ == DirtyBackend::kHash;
  if (backend_ == DirtyBackend::kSoftDirty) {
    // Process-wide: clears every soft-dirty bit and VMA flag, write-protects every PTE.
    if (write(clear_refs_.fd, "4", 1) != 1) return -errno;
  }
  std::pmr::vector<uint32_t> idx(mr);
  std::pmr::vector<RunRec> runs(mr);
  std::pmr::vector<uint64_t> region_first(mr), region_nruns(mr);
  uint64_t nhashes = 0;
  const uint64_t guard = has_guard_ ? kPageIsGuard : 0;
  for (size_t i = 0; i < maps.size(); ++i) {
    const MapEntry& m = maps[i];
    if (!eligible[i] || m.end <= m.start || m.shared) continue;
    if (!idx.empty() && maps[idx.back()].end > m.start) return -EINVAL;  // must be sorted
    idx.push_back(static_cast<uint32_t>(i));
    region_first.push_back(runs.size());
    if (hash) {
      // Hash what a later scan can select: present or swapped pages that are not the zero
      // page; in file mappings only private copies (a page-cache page that becomes a copy
      // was written; that needs no old hash).
      GatherCtx g{&runs, runs.size(), 0,
                  classify_region(m, false).select == PageSelect::kPrivateCopies};
      int rc = walk_range(
          m.start, m.end, kPageIsPresent | kPageIsSwapped | kPageIsPfnZero | kPageIsFile | guard, 0,
          [](void* p, uint64_t a, uint64_t n, uint64_t c) {
            auto* x = static_cast<GatherCtx*>(p);
            if (!(c & (kPageIsPresent | kPageIsSwapped)) || (c & (kPageIsPfnZero | kPageIsGuard)) ||
                (x->skip_file && (c & kPageIsFile)))
              return 0;
            if (x->runs->size() > x->first_run) {
              RunRec& last = x->runs->back();
              if (last.addr + last.npages * kPage == a) {
                last.npages += n;
                x->pages += n;
                return 0;
              }
            }
            x->runs->push_back(RunRec{a, n, 0});
            x->pages += n;
            return 0;
          },
          &g);
      if (rc) return rc;
      nhashes += g.pages;
    }
    region_nruns.push_back(runs.size() - region_first.back());
  }

  const size_t off_regions = align8(sizeof(StoreHeader));
  const size_t off_runs = off_regions + idx.size() * sizeof(RegionRec);
  const size_t off_hashes = off_runs + runs.size() * sizeof(RunRec);
  const size_t off_forced = off_hashes + nhashes * sizeof(uint64_t);
  const size_t total = off_forced + n_not_saved * sizeof(DirtyRange);
  if (int e = ensure_store(total)) return e;
  auto* h = reinterpret_cast<StoreHeader*>(store_);
  // Header last-but-valid: until the records are complete, nothing is found in it.
  *h = StoreHeader{kStoreMagic, cookie_, 0, 0, 0, 0, off_regions, off_runs, off_hashes, off_forced};
  auto* regs = reinterpret_cast<RegionRec*>(store_ + off_regions);
  auto* rr = reinterpret_cast<RunRec*>(store_ + off_runs);
  auto* hs = reinterpret_cast<uint64_t*>(store_ + off_hashes);
  char buf[kPage];
  uint64_t hpos = 0;
  for (size_t k = 0; k < idx.size(); ++k) {
    const MapEntry& m = maps[idx[k]];
    regs[k] = RegionRec{m.start,     m.end,       m.offset,        m.inode,
                        m.dev_major, m.dev_minor, region_first[k], region_nruns[k]};
    const bool readable = (m.prot & PROT_READ) != 0;
    for (uint64_t j = region_first[k]; j < region_first[k] + region_nruns[k]; ++j) {
      RunRec r = runs[j];
      r.first_hash = hpos;
      rr[j] = r;
      for (uint64_t p = r.addr; p < r.addr + r.npages * kPage; p += kPage) {
        const void* bytes = reinterpret_cast<const void*>(p);
        if (!readable) {
          // Unreadable now means unreadable at scan too (then written); 0 never matches
          // a page that became readable except by a 2^-64 chance.
          if (pread(mem_.fd, buf, kPage, static_cast<off_t>(p)) != static_cast<ssize_t>(kPage)) {
            hs[hpos++] = 0;
            continue;
          }
          bytes = buf;
        }
        hs[hpos++] = XXH3_64bits(bytes, kPage);
      }
    }
  }
  stats_.pages_hashed = hpos;
  stats_.regions_tracked = idx.size();
  auto* f = reinterpret_cast<DirtyRange*>(store_ + off_forced);
  for (size_t i = 0; i < n_not_saved; ++i) f[i] = not_saved[i];
  std::sort(f, f + n_not_saved,
            [](const DirtyRange& a, const DirtyRange& b) { return a.start < b.start; });
  h->nregions = idx.size();
  h->nruns = runs.size();
  h->nhashes = nhashes;
  h->nforced = n_not_saved;
  return 0;
}

int DirtyTracker::owned_ranges(uint64_t* starts, uint64_t* ends, int cap) const {
  if (!store_ || cap < 1) return 0;
  starts[0] = reinterpret_cast<uintptr_t>(store_);
  ends[0] = starts[0] + store_cap_;
  return 1;
}

int DirtyTracker::owned_fds(int* fds, int cap) const {
  int n = 0;
  for (const Fd* f : {&uffd_, &pagemap_, &mem_, &clear_refs_})
    if (f->fd >= 0 && n < cap) fds[n++] = f->fd;
  return n;
}

}  // namespace ocr
