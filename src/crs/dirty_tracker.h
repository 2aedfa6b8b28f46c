// Dirty-page tracking for incremental images (DESIGN.md section 4, step 4): which pages of
// a region were written since the last committed image. Three kernel mechanisms, best
// first: userfaultfd write-protect in async mode read back with PAGEMAP_SCAN, soft-dirty
// bits, per-page content hashes. docs/incremental.md describes each one, its cost and
// its limits. Everything after init() runs while the application is parked: no malloc
// (only the caller's memory_resource and the tracker's own mmap'd store), no exceptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <string>
#include <string_view>
#include <vector>

#include "crs/image_format.h"
#include "crs/page_scan.h"
#include "crs/proc_maps.h"
#include "crs/region_classifier.h"

namespace ocr {

enum class DirtyBackend : uint32_t {
  kNone = OCR_DIRTY_NONE,
  kUffdWp = OCR_DIRTY_UFFD_WP,
  kSoftDirty = OCR_DIRTY_SOFT_DIRTY,
  kHash = OCR_DIRTY_HASH
};

// "none", "uffd", "softdirty", "hash" (the OMPI_CR_DIRTY_TRACKING spellings).
const char* dirty_backend_name(DirtyBackend b);
// Accepts those names (and "off" for none); false for anything else.
bool parse_dirty_backend(std::string_view s, DirtyBackend* out);

// The region policy's verdict allows tracking: private anonymous or private file memory.
// Shared mappings, skipped regions (runtime-owned, kernel specials, devices, hugetlb) never.
bool dirty_tracking_eligible(const MapEntry& m, const RegionClass& c);

struct DirtyRange {
  uint64_t start, end;  // [start, end), page aligned
};

class DirtyTracker {
 public:
  DirtyTracker() = default;
  // Closes fds and unmaps the store when they are provably still this process's own.
  ~DirtyTracker();
  DirtyTracker(const DirtyTracker&) = delete;
  DirtyTracker& operator=(const DirtyTracker&) = delete;

  // Probes the kernel and picks the best backend, or the one OMPI_CR_DIRTY_TRACKING names
  // ("uffd", "softdirty", "hash", "none"). A named backend the kernel lacks, or an unknown
  // name, returns false with *error set to one line. May allocate (start-up / after
  // restore, never while parked). Releases what an earlier init() opened when it is still
  // ours (checked by identity, never blindly).
  bool init(std::string* error);
  // Same, with the backend forced by the caller (tests, tools); kNone disables tracking.
  bool init_backend(DirtyBackend want, std::string* error);
  // Whether `b` works on this kernel, without keeping anything open. *why says why not.
  // Note: probing soft-dirty writes "4" to /proc/self/clear_refs (clears this process's
  // soft-dirty bits), harmless unless something else in the process relies on them.
  static bool probe(DirtyBackend b, std::string* why);
  // Test hook: open the userfaultfd with UFFD_USER_MODE_ONLY even when privileged, the way
  // an unprivileged process must when vm.unprivileged_userfaultfd=0. Call before init().
  void set_uffd_user_mode_only(bool on) { force_user_mode_only_ = on; }
  // Test hook: read /proc/self/pagemap words even where PAGEMAP_SCAN exists (the path of
  // kernels before 6.7). The uffd backend needs the ioctl and refuses to init with this.
  void set_pagemap_fallback(bool on) { force_pagemap_ = on; }

  DirtyBackend backend() const { return backend_; }
  // A reset() succeeded since init()/invalidate(): incremental images are possible.
  bool armed() const { return armed_; }

  // --- the rest runs while the application is parked: NO malloc (only `mr`), no exceptions ---

  // True if [m.start, m.end) has been tracked continuously since the last reset(). `m` must
  // come from /proc/self/smaps (VmFlags parsed): the uffd backend needs the "uw" flag.
  // uffd: the VMA is registered with this tracker's userfaultfd (VmFlags "uw" and the
  //   kernel confirms the owner); mremap moves, new mappings and forks drop that. A region
  //   grown in place stays tracked (its new pages can only appear as written).
  // softdirty, hash: a region with the same start, end, offset, device and inode was
  //   tracked at the last reset (for anonymous memory the offset is the address the VMA
  //   was created at, so a region mremap'd into the place of another one does not match).
  bool region_tracked(const MapEntry& m) const;

  // For a tracked region: pages selected by `sel` (same meaning as PageScanner::scan) that
  // were written since the last reset go to `written`; selected pages not written go to
  // `unchanged`. Runs are appended sorted and merged (only among the runs this call
  // appends). `counts` is added to as PageScanner::scan does (selected = written +
  // unchanged). Returns 0 or -errno; -ESTALE means the region is not (or no longer)
  // tracked: save it whole. Pages whose state cannot be proven unchanged are written.
  // May fault pages in (read) to settle an ambiguous page state (see docs/incremental.md).
  int scan_region(const MapEntry& m, PageSelect sel, std::pmr::vector<PageRun>& written,
                  std::pmr::vector<PageRun>& unchanged, PageCounts& counts,
                  std::pmr::memory_resource* mr);

  // After an image was committed (application still parked): track every eligible region in
  // `maps` from now on. `eligible[i]` says whether maps[i] may be tracked (the caller's
  // policy: dirty_tracking_eligible() and not runtime-owned). `not_saved` lists page ranges
  // inside eligible regions that the committed image did NOT carry (hinted exclusions,
  // receive buffers): the next scan reports them as written, never as inherited.
  // A region the kernel refuses is simply not tracked. Returns 0 or -errno; on error
  // armed() is false (the next image must be full). May move the store: call
  // owned_ranges() again afterwards. In a forked child, or when the application closed
  // the tracker's descriptors, it reopens them first (syscalls only).
  int reset(const std::pmr::vector<MapEntry>& maps, const std::pmr::vector<bool>& eligible,
            std::pmr::memory_resource* mr, const DirtyRange* not_saved = nullptr,
            size_t n_not_saved = 0);

  // A checkpoint failed after state changed: the next image must be full.
  void invalidate() { armed_ = false; }

  // In a restored process the object's memory came back but its descriptors and store did
  // not (they were excluded from the image): drop them without any syscall. Then init().
  void forget_after_restore();

  // Address ranges the tracker owns (its store): the writer excludes them from images.
  // Returns how many were written to starts/ends (at most cap).
  int owned_ranges(uint64_t* starts, uint64_t* ends, int cap) const;
  // Descriptors the tracker owns: the writer must not record them as application files.
  int owned_fds(int* fds, int cap) const;

  // What the last reset() did (for logs and the benchmark).
  struct ResetStats {
    uint64_t regions_tracked = 0;   // eligible regions now tracked
    uint64_t regions_refused = 0;   // eligible regions the kernel would not track
    uint64_t regions_released = 0;  // registrations dropped (region no longer eligible)
    uint64_t pages_hashed = 0;      // hash backend
  };
  const ResetStats& last_reset_stats() const { return stats_; }

 private:
  struct Fd {
    int fd = -1;
    uint64_t dev = 0, ino = 0;  // identity at open: a number the app reused is not ours
  };
  struct Walk;  // per-scan classification state (dirty_tracker.cpp)

  bool open_backend(DirtyBackend b, std::string* why);
  void release_all();
  bool fds_ok() const;
  int reopen_if_needed();
  int ensure_store(size_t bytes);
  void forget_store();
  int uffd_owns(uint64_t start, uint64_t end) const;
  int walk_range(uint64_t start, uint64_t end, uint64_t return_mask, uint64_t flags,
                 int (*fn)(void*, uint64_t, uint64_t, uint64_t), void* ctx) const;
  int classify_range(Walk& w, uint64_t addr, uint64_t npages, uint64_t cats, bool may_resolve);
  int settle_ambiguous(Walk& w, uint64_t addr, uint64_t npages);
  int hash_compare(Walk& w, uint64_t addr, uint64_t npages);
  int reset_uffd(const std::pmr::vector<MapEntry>& maps, const std::pmr::vector<bool>& eligible);
  int reset_recorded(const std::pmr::vector<MapEntry>& maps, const std::pmr::vector<bool>& eligible,
                     std::pmr::memory_resource* mr, const DirtyRange* not_saved,
                     size_t n_not_saved);
  int store_forced(const DirtyRange* not_saved, size_t n);
  const void* find_region(const MapEntry& m) const;

  DirtyBackend backend_ = DirtyBackend::kNone;
  bool armed_ = false;
  bool force_user_mode_only_ = false;
  bool force_pagemap_ = false;
  bool user_mode_only_ = false;  // the userfaultfd was opened with UFFD_USER_MODE_ONLY
  bool has_scan_ = false;        // PAGEMAP_SCAN ioctl
  bool has_guard_ = false;       // PAGE_IS_GUARD category (Linux >= 6.14)
  bool has_sd_cat_ = false;      // PAGE_IS_SOFT_DIRTY category (newer than the ioctl itself)
  int pid_ = 0;                  // process the descriptors belong to (fork check)
  Fd uffd_, pagemap_, mem_, clear_refs_;
  // Store: one mmap'd area (MADV_DONTDUMP|DONTFORK) holding the region records, page runs
  // and hashes of the last reset, and the not-saved ranges. Layout in dirty_tracker.cpp.
  unsigned char* store_ = nullptr;
  size_t store_cap_ = 0;
  uint64_t cookie_ = 0;  // also in the store header: proves a mapping is still ours
  ResetStats stats_;
};

}  // namespace ocr
