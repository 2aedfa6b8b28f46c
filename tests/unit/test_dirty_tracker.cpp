// Tests of the dirty-page tracker (src/crs/dirty_tracker.h) against the real kernel: every
// backend this kernel has runs the same scenarios (exact written/unchanged sets, absent
// pages, regions replaced / moved / grown, private file copies, forks, restore), and a
// backend the kernel lacks is skipped only after checking that its probe says so.
#include "crs/dirty_tracker.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory_resource>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "crs/region_classifier.h"

namespace ocr {
namespace {

constexpr size_t kPg = 4096;

std::string name_of(DirtyBackend b) {
  return dirty_backend_name(b);
}

// Reads and parses /proc/self/smaps (VmFlags are needed for the uffd backend).
std::pmr::vector<MapEntry> read_maps(std::pmr::memory_resource* mr) {
  int err = 0;
  std::string_view text = read_whole_file("/proc/self/smaps", mr, &err);
  std::pmr::vector<MapEntry> maps(mr);
  const char* perr = nullptr;
  EXPECT_EQ(parse_proc_maps(text, maps, &perr), 0) << (perr ? perr : "");
  return maps;
}

const MapEntry* entry_at(const std::pmr::vector<MapEntry>& maps, const void* p) {
  const uint64_t a = reinterpret_cast<uintptr_t>(p);
  for (const MapEntry& m : maps)
    if (m.start <= a && a < m.end) return &m;
  return nullptr;
}

bool kernel_shows_softdirty_vmflag() {
  std::pmr::monotonic_buffer_resource mr;
  for (const MapEntry& m : read_maps(&mr))
    if (m.has_vm_flag(OCR_VMF_SOFTDIRTY)) return true;
  return false;
}

// Anonymous private pages between two PROT_NONE guard pages, so that the kernel never merges
// the test region with a neighbour.
struct AnonRegion {
  char* guard = nullptr;
  char* base = nullptr;
  size_t n = 0;
  explicit AnonRegion(size_t pages, bool thp = false) : n(pages) {
    const size_t align = thp ? (size_t{2} << 20) : kPg;
    const size_t total = (pages + 2) * kPg + align;
    guard = static_cast<char*>(
        mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    EXPECT_NE(guard, MAP_FAILED);
    uintptr_t b = (reinterpret_cast<uintptr_t>(guard) + kPg + align - 1) & ~(align - 1);
    base = static_cast<char*>(mmap(reinterpret_cast<void*>(b), pages * kPg, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(base), b);
    total_ = total;
    if (thp) madvise(base, pages * kPg, MADV_HUGEPAGE);
  }
  ~AnonRegion() { munmap(guard, total_); }
  char* page(size_t i) const { return base + i * kPg; }
  void touch_all(char v = 1) const {
    for (size_t i = 0; i < n; i++) page(i)[0] = v;
  }

 private:
  size_t total_ = 0;
};

struct ScanResult {
  int rc = 0;
  std::set<size_t> written, unchanged;  // page indices relative to the region's base
  PageCounts counts;
};

// Checks the run invariants: sorted, merged (no two runs touch), disjoint lists.
void check_runs(const std::pmr::vector<PageRun>& runs) {
  for (size_t i = 1; i < runs.size(); i++)
    EXPECT_LT(runs[i - 1].addr + runs[i - 1].npages * kPg, runs[i].addr) << "unsorted or unmerged";
  for (const PageRun& r : runs) EXPECT_GT(r.npages, 0u);
}

class TrackerHarness {
 public:
  explicit TrackerHarness(DirtyBackend b) : backend_(b) {}
  DirtyTracker t;

  bool init(std::string* err) { return t.init_backend(backend_, err); }

  // reset() with only regions overlapping `ranges` eligible (plus the policy's verdict).
  int reset_for(std::vector<std::pair<const void*, size_t>> ranges,
                std::vector<DirtyRange> not_saved = {}) {
    std::pmr::monotonic_buffer_resource mr;
    auto maps = read_maps(&mr);
    std::pmr::vector<bool> eligible(maps.size(), false, &mr);
    for (size_t i = 0; i < maps.size(); i++) {
      const MapEntry& m = maps[i];
      bool hit = ranges.empty();
      for (auto& [p, len] : ranges) {
        const uint64_t a = reinterpret_cast<uintptr_t>(p);
        if (m.start < a + len && a < m.end) hit = true;
      }
      eligible[i] = hit && !owned(m) && dirty_tracking_eligible(m, classify_region(m, false));
    }
    return t.reset(maps, eligible, &mr, not_saved.data(), not_saved.size());
  }
  int reset_all() { return reset_for({}); }

  bool tracked(const void* p) {
    std::pmr::monotonic_buffer_resource mr;
    auto maps = read_maps(&mr);
    const MapEntry* m = entry_at(maps, p);
    return m && t.region_tracked(*m);
  }

  ScanResult scan(const void* base, size_t n, PageSelect sel = PageSelect::kPresentOrSwapped) {
    ScanResult r;
    std::pmr::monotonic_buffer_resource mr;
    auto maps = read_maps(&mr);
    const MapEntry* m = entry_at(maps, base);
    if (!m) {
      r.rc = -ENOENT;
      return r;
    }
    std::pmr::vector<PageRun> w(&mr), u(&mr);
    r.rc = t.scan_region(*m, sel, w, u, r.counts, &mr);
    check_runs(w);
    check_runs(u);
    const uint64_t b = reinterpret_cast<uintptr_t>(base);
    auto add = [&](const std::pmr::vector<PageRun>& runs, std::set<size_t>& out) {
      for (const PageRun& run : runs)
        for (uint64_t k = 0; k < run.npages; k++) {
          const uint64_t a = run.addr + k * kPg;
          if (a >= b && a < b + n * kPg) out.insert((a - b) / kPg);
        }
    };
    add(w, r.written);
    add(u, r.unchanged);
    for (size_t i : r.written) EXPECT_EQ(r.unchanged.count(i), 0u) << "page " << i << " in both";
    return r;
  }

 private:
  bool owned(const MapEntry& m) const {
    uint64_t s[4], e[4];
    int n = t.owned_ranges(s, e, 4);
    for (int i = 0; i < n; i++)
      if (m.start < e[i] && s[i] < m.end) return true;
    return false;
  }
  DirtyBackend backend_;
};

std::set<size_t> range_set(size_t from, size_t to, const std::set<size_t>& minus = {}) {
  std::set<size_t> s;
  for (size_t i = from; i < to; i++)
    if (!minus.count(i)) s.insert(i);
  return s;
}

// ---------------------------------------------------------------------------------------
// Probing and init

TEST(DirtyTrackerProbe, SoftDirtyProbeMatchesKernel) {
  // With CONFIG_MEM_SOFT_DIRTY every new VMA shows "sd" in smaps VmFlags: independent
  // evidence of what the probe must find.
  std::string why;
  const bool probed = DirtyTracker::probe(DirtyBackend::kSoftDirty, &why);
  EXPECT_EQ(probed, kernel_shows_softdirty_vmflag()) << why;
  if (!probed) {
    EXPECT_FALSE(why.empty());
  }
}

TEST(DirtyTrackerProbe, ForcedMissingBackendIsAClearError) {
  DirtyBackend missing = DirtyBackend::kNone;
  for (DirtyBackend b : {DirtyBackend::kSoftDirty, DirtyBackend::kUffdWp})
    if (!DirtyTracker::probe(b, nullptr)) missing = b;
  if (missing == DirtyBackend::kNone) GTEST_SKIP() << "every backend is available on this kernel";
  setenv("OMPI_CR_DIRTY_TRACKING", dirty_backend_name(missing), 1);
  DirtyTracker t;
  std::string err;
  EXPECT_FALSE(t.init(&err));
  unsetenv("OMPI_CR_DIRTY_TRACKING");
  EXPECT_NE(err.find(std::string("OMPI_CR_DIRTY_TRACKING=") + dirty_backend_name(missing)),
            std::string::npos)
      << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << "one line: " << err;
  EXPECT_EQ(t.backend(), DirtyBackend::kNone);
  EXPECT_FALSE(t.armed());
}

TEST(DirtyTrackerProbe, UnknownNameIsAnError) {
  setenv("OMPI_CR_DIRTY_TRACKING", "bogus", 1);
  DirtyTracker t;
  std::string err;
  EXPECT_FALSE(t.init(&err));
  unsetenv("OMPI_CR_DIRTY_TRACKING");
  EXPECT_NE(err.find("bogus"), std::string::npos) << err;
}

TEST(DirtyTrackerProbe, AutoPicksBestAvailableAndEnvNone) {
  unsetenv("OMPI_CR_DIRTY_TRACKING");
  DirtyTracker t;
  std::string err;
  ASSERT_TRUE(t.init(&err)) << err;
  DirtyBackend best = DirtyBackend::kNone;
  for (DirtyBackend b : {DirtyBackend::kHash, DirtyBackend::kSoftDirty, DirtyBackend::kUffdWp})
    if (DirtyTracker::probe(b, nullptr)) best = b;
  EXPECT_EQ(t.backend(), best);
  EXPECT_FALSE(t.armed());

  setenv("OMPI_CR_DIRTY_TRACKING", "none", 1);
  EXPECT_TRUE(t.init(&err));
  unsetenv("OMPI_CR_DIRTY_TRACKING");
  EXPECT_EQ(t.backend(), DirtyBackend::kNone);
  int fds[4];
  EXPECT_EQ(t.owned_fds(fds, 4), 0);
}

// ---------------------------------------------------------------------------------------
// Every backend

class DirtyTrackerTest : public ::testing::TestWithParam<DirtyBackend> {
 protected:
  void SetUp() override {
    std::string why;
    if (!DirtyTracker::probe(GetParam(), &why)) {
      ASSERT_FALSE(why.empty()) << "a missing backend must say why";
      if (GetParam() == DirtyBackend::kSoftDirty) {
        ASSERT_FALSE(kernel_shows_softdirty_vmflag());
      }
      GTEST_SKIP() << name_of(GetParam()) << " not available in this kernel: " << why;
    }
    h_ = std::make_unique<TrackerHarness>(GetParam());
    std::string err;
    ASSERT_TRUE(h_->init(&err)) << err;
    ASSERT_EQ(h_->t.backend(), GetParam());
  }
  TrackerHarness& h() { return *h_; }
  bool is_uffd() const { return GetParam() == DirtyBackend::kUffdWp; }

 private:
  std::unique_ptr<TrackerHarness> h_;
};

TEST_P(DirtyTrackerTest, ExactWrittenAndUnchangedPages) {
  AnonRegion r(256);
  r.touch_all();
  EXPECT_FALSE(h().tracked(r.base)) << "nothing is tracked before the first reset";
  ASSERT_EQ(h().reset_for({{r.base, r.n * kPg}}), 0);
  EXPECT_TRUE(h().t.armed());
  EXPECT_TRUE(h().tracked(r.base));

  const std::set<size_t> wrote = {3, 7, 8, 9, 200};
  for (size_t i : wrote) r.page(i)[100] = 42;
  // Reads, of written and unwritten pages alike, are not writes.
  volatile char sink = 0;
  for (size_t i = 0; i < r.n; i += 3) sink = sink + r.page(i)[5];

  ScanResult s = h().scan(r.base, r.n);
  ASSERT_EQ(s.rc, 0);
  EXPECT_EQ(s.written, wrote);
  EXPECT_EQ(s.unchanged, range_set(0, 256, wrote));
  EXPECT_EQ(s.counts.selected, 256u);
  EXPECT_EQ(s.counts.absent, 0u);

  // Second round: only what was written after this reset.
  ASSERT_EQ(h().reset_for({{r.base, r.n * kPg}}), 0);
  r.page(5)[0] = 9;
  r.page(255)[4095] = 9;
  s = h().scan(r.base, r.n);
  ASSERT_EQ(s.rc, 0);
  EXPECT_EQ(s.written, (std::set<size_t>{5, 255}));
  EXPECT_EQ(s.unchanged, range_set(0, 256, {5, 255}));
}

TEST_P(DirtyTrackerTest, UntouchedAndZeroPagesAreNotReported) {
  AnonRegion r(64);
  for (size_t i = 0; i < 32; i++) r.page(i)[0] = 1;  // 32..63 never touched
  ASSERT_EQ(h().reset_for({{r.base, r.n * kPg}}), 0);
  volatile char sink = r.page(40)[0];  // maps the shared zero page
  (void)sink;
  r.page(50)[0] = 1;  // new page: written
  ScanResult s = h().scan(r.base, r.n);
  ASSERT_EQ(s.rc, 0);
  EXPECT_EQ(s.written, (std::set<size_t>{50}));
  EXPECT_EQ(s.unchanged, range_set(0, 32));
  EXPECT_GE(s.counts.absent + s.counts.zero, 31u);
}

TEST_P(DirtyTrackerTest, DontneedPageIsAbsent) {
  AnonRegion r(32);
  r.touch_all();
  ASSERT_EQ(h().reset_for({{r.base, r.n * kPg}}), 0);
  r.page(4)[0] = 7;
  ASSERT_EQ(madvise(r.page(4), kPg, MADV_DONTNEED), 0);   // written, then dropped
  ASSERT_EQ(madvise(r.page(10), kPg, MADV_DONTNEED), 0);  // unchanged, then dropped
  ScanResult s = h().scan(r.base, r.n);
  ASSERT_EQ(s.rc, 0);
  EXPECT_TRUE(s.written.empty());
  EXPECT_EQ(s.unchanged, range_set(0, 32, {4, 10}));
  EXPECT_EQ(s.counts.absent, 2u);

  // A dropped page read back is the zero page: neither written nor inherited.
  volatile char sink = r.page(10)[0];
  (void)sink;
  s = h().scan(r.base, r.n);
  EXPECT_EQ(s.written.count(10) + s.unchanged.count(10), 0u);
}

TEST_P(DirtyTrackerTest, ReplacedMovedAndNewRegionsAreNotTracked) {
  AnonRegion a(16), b(16), c(16);
  a.touch_all();
  b.touch_all();
  c.touch_all();
  ASSERT_EQ(h().reset_for({{a.base, 16 * kPg}, {b.base, 16 * kPg}, {c.base, 16 * kPg}}), 0);
  ASSERT_TRUE(h().tracked(a.base));
  ASSERT_TRUE(h().tracked(b.base));
  ASSERT_TRUE(h().tracked(c.base));
  // The hash backend cannot see a replacement by an identical mapping at the same address
  // (documented); it stays correct because it compares content: then every page whose bytes
  // differ from the parent's must come out written, and no absent page may be inherited.
  const bool same_place_visible = GetParam() != DirtyBackend::kHash;
  auto expect_replaced = [&](const char* what, char* base, const std::set<size_t>& now_present) {
    SCOPED_TRACE(what);
    if (same_place_visible) {
      EXPECT_FALSE(h().tracked(base));
      EXPECT_EQ(h().scan(base, 16).rc, -ESTALE) << "scanning an untracked region is refused";
      return;
    }
    if (!h().tracked(base)) return;
    ScanResult s = h().scan(base, 16);
    ASSERT_EQ(s.rc, 0);
    EXPECT_EQ(s.written, now_present) << "new bytes must be written";
    EXPECT_TRUE(s.unchanged.empty());
  };

  // munmap + mmap at the same address: a new region (new bytes in it).
  ASSERT_EQ(munmap(a.base, 16 * kPg), 0);
  ASSERT_EQ(mmap(a.base, 16 * kPg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                 -1, 0),
            a.base);
  a.touch_all(2);
  expect_replaced("munmap+mmap", a.base, range_set(0, 16));
  // mmap(MAP_FIXED) straight over it, nothing touched yet.
  ASSERT_EQ(mmap(c.base, 16 * kPg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                 -1, 0),
            c.base);
  expect_replaced("mmap MAP_FIXED over", c.base, {});

  // mremap move to another address, and back into its old place.
  AnonRegion dest(16);
  void* moved = mremap(b.base, 16 * kPg, 16 * kPg, MREMAP_MAYMOVE | MREMAP_FIXED, dest.base);
  ASSERT_EQ(moved, dest.base);
  EXPECT_FALSE(h().tracked(dest.base));
  void* back = mremap(dest.base, 16 * kPg, 16 * kPg, MREMAP_MAYMOVE | MREMAP_FIXED, b.base);
  ASSERT_EQ(back, b.base);
  if (same_place_visible && GetParam() != DirtyBackend::kSoftDirty) {
    // uffd: a move drops the registration. (soft-dirty marks moved pages dirty instead.)
    EXPECT_FALSE(h().tracked(b.base)) << "moved away and back is not continuous tracking";
  } else if (h().tracked(b.base)) {
    ScanResult s = h().scan(b.base, 16);
    ASSERT_EQ(s.rc, 0);  // same bytes at the same addresses: any verdict is content-correct
    EXPECT_EQ(s.written.size() + s.unchanged.size(), 16u);
  }
  // dest's own pages are gone (moved): keep the destructor happy.
  ASSERT_EQ(mmap(dest.base, 16 * kPg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
            dest.base);

  // A region created after the reset.
  AnonRegion fresh(8);
  fresh.touch_all();
  EXPECT_FALSE(h().tracked(fresh.base));
  EXPECT_EQ(h().scan(fresh.base, 8).rc, -ESTALE);
}

TEST_P(DirtyTrackerTest, GrowInPlaceNeverDropsWrites) {
  AnonRegion r(64);  // the first 32 pages are the region, the rest room to grow
  ASSERT_EQ(mprotect(r.page(32), 32 * kPg, PROT_NONE), 0);  // a separate VMA for now
  for (size_t i = 0; i < 32; i++) r.page(i)[0] = 1;
  ASSERT_EQ(h().reset_for({{r.base, 32 * kPg}}), 0);
  ASSERT_TRUE(h().tracked(r.base));
  // Make the room only now: reset() may map its store wherever there is a hole.
  ASSERT_EQ(munmap(r.page(32), 32 * kPg), 0);
  void* g = mremap(r.base, 32 * kPg, 64 * kPg, 0);  // grow in place, no move
  ASSERT_EQ(g, r.base);
  r.page(2)[0] = 5;
  r.page(40)[0] = 5;
  volatile char sink = r.page(50)[0];
  (void)sink;
  if (!h().tracked(r.base)) {
    // softdirty/hash: the geometry changed, the region is saved whole. Fine.
    EXPECT_FALSE(is_uffd()) << "uffd keeps a grown region tracked";
    EXPECT_EQ(h().scan(r.base, 64).rc, -ESTALE);
    return;
  }
  ScanResult s = h().scan(r.base, 64);
  ASSERT_EQ(s.rc, 0);
  EXPECT_EQ(s.written, (std::set<size_t>{2, 40}));
  EXPECT_EQ(s.unchanged, range_set(0, 32, {2}));
}

TEST_P(DirtyTrackerTest, PrivateFileMappingCopies) {
  // A named, linked file: the region classifies as FILE_PRIVATE.
  char named[] = "/tmp/ocr_dirty_XXXXXX";
  int nfd = mkstemp(named);
  ASSERT_GE(nfd, 0);
  const size_t n = 64;
  std::vector<char> page(kPg);
  for (size_t i = 0; i < n; i++) {
    std::fill(page.begin(), page.end(), static_cast<char>(i + 1));
    ASSERT_EQ(write(nfd, page.data(), kPg), static_cast<ssize_t>(kPg));
  }
  char* f = static_cast<char*>(mmap(nullptr, n * kPg, PROT_READ | PROT_WRITE, MAP_PRIVATE, nfd, 0));
  ASSERT_NE(f, MAP_FAILED);
  close(nfd);
  volatile char sink = 0;
  for (size_t i = 0; i < n; i++) sink = sink + f[i * kPg];  // clean page-cache pages
  f[1 * kPg] = 'a';                                         // private copies made before the reset
  f[3 * kPg] = 'b';
  f[5 * kPg] = 'c';
  ASSERT_EQ(h().reset_for({{f, n * kPg}}), 0);
  ASSERT_TRUE(h().tracked(f));

  f[5 * kPg] = 'C';  // rewrite a copy
  f[9 * kPg] = 'd';  // new copy
  // A protected copy dropped: the page is the file's again (uffd leaves a marker there that
  // looks like a swapped page; the tracker must not take it for the parent's copy).
  ASSERT_EQ(madvise(f + 1 * kPg, kPg, MADV_DONTNEED), 0);
  EXPECT_EQ(f[1 * kPg + 10], 2);  // file content again (page 1 holds byte 2)
  ASSERT_EQ(madvise(f + 20 * kPg, kPg, MADV_DONTNEED), 0);  // a clean page dropped

  ScanResult s = h().scan(f, n, PageSelect::kPrivateCopies);
  ASSERT_EQ(s.rc, 0);
  EXPECT_EQ(s.written, (std::set<size_t>{5, 9}));
  EXPECT_EQ(s.unchanged, (std::set<size_t>{3}));
  EXPECT_GE(s.counts.file_clean + s.counts.absent, n - 3);

  // Same after dropping a protected copy of a region that became unreadable: settling the
  // page state has to go through /proc/self/mem.
  ASSERT_EQ(h().reset_for({{f, n * kPg}}), 0);
  ASSERT_EQ(madvise(f + 3 * kPg, kPg, MADV_DONTNEED), 0);
  ASSERT_EQ(mprotect(f, n * kPg, PROT_NONE), 0);
  s = h().scan(f, n, PageSelect::kPrivateCopies);
  ASSERT_EQ(s.rc, 0);
  EXPECT_TRUE(s.written.empty());
  EXPECT_EQ(s.unchanged, (std::set<size_t>{5, 9}));
  munmap(f, n * kPg);
  unlink(named);
}

TEST_P(DirtyTrackerTest, FractionAccuracyOn64MiB) {
  for (bool thp : {false, true}) {
    for (int pct : {1, 10, 50}) {
      SCOPED_TRACE(testing::Message() << pct << "% thp=" << thp);
      const size_t n = (size_t{64} << 20) / kPg;
      AnonRegion r(n, thp);
      r.touch_all();
      ASSERT_EQ(h().reset_for({{r.base, n * kPg}}), 0);
      std::vector<size_t> order(n);
      for (size_t i = 0; i < n; i++) order[i] = i;
      std::mt19937_64 rng(1234 + pct);
      std::shuffle(order.begin(), order.end(), rng);
      order.resize(n * pct / 100);
      std::set<size_t> want(order.begin(), order.end());
      for (size_t i : want) r.page(i)[i % kPg] = 2;
      ScanResult s = h().scan(r.base, n);
      ASSERT_EQ(s.rc, 0);
      EXPECT_EQ(s.written.size(), want.size());
      EXPECT_TRUE(s.written == want);
      EXPECT_EQ(s.unchanged.size(), n - want.size());
    }
  }
}

TEST_P(DirtyTrackerTest, KernelModeWritesCount) {
  AnonRegion r(8);
  r.touch_all();
  ASSERT_EQ(h().reset_for({{r.base, 8 * kPg}}), 0);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(write(p[1], "0123456789", 10), 10);
  ASSERT_EQ(read(p[0], r.page(6) + 100, 10), 10);  // copy_to_user into a protected page
  close(p[0]);
  close(p[1]);
  ScanResult s = h().scan(r.base, 8);
  ASSERT_EQ(s.rc, 0);
  EXPECT_EQ(s.written, (std::set<size_t>{6}));
}

TEST_P(DirtyTrackerTest, UnreadablePagesAreTracked) {
  AnonRegion r(16);
  r.touch_all();
  ASSERT_EQ(h().reset_for({{r.base, 16 * kPg}}), 0);
  r.page(3)[0] = 9;
  ASSERT_EQ(mprotect(r.base, 16 * kPg, PROT_NONE), 0);
  ScanResult s = h().scan(r.base, 16);
  ASSERT_EQ(s.rc, 0);
  EXPECT_EQ(s.written, (std::set<size_t>{3}));
  EXPECT_EQ(s.unchanged, range_set(0, 16, {3}));
  ASSERT_EQ(mprotect(r.base, 16 * kPg, PROT_READ | PROT_WRITE), 0);
}

TEST_P(DirtyTrackerTest, PagesNotSavedInTheParentAreWritten) {
  AnonRegion r(32);
  r.touch_all();
  const uint64_t b = reinterpret_cast<uintptr_t>(r.base);
  ASSERT_EQ(h().reset_for({{r.base, 32 * kPg}},
                          {{b + 10 * kPg, b + 13 * kPg}, {b + 20 * kPg, b + 21 * kPg}}),
            0);
  r.page(11)[0] = 3;
  ScanResult s = h().scan(r.base, 32);
  ASSERT_EQ(s.rc, 0);
  EXPECT_EQ(s.written, (std::set<size_t>{10, 11, 12, 20}));
  EXPECT_EQ(s.unchanged, range_set(0, 32, {10, 11, 12, 20}));
}

TEST_P(DirtyTrackerTest, InvalidateDisarms) {
  AnonRegion r(8);
  r.touch_all();
  ASSERT_EQ(h().reset_for({{r.base, 8 * kPg}}), 0);
  h().t.invalidate();
  EXPECT_FALSE(h().t.armed());
  EXPECT_FALSE(h().tracked(r.base));
  EXPECT_EQ(h().scan(r.base, 8).rc, -ESTALE);
}

TEST_P(DirtyTrackerTest, ForkedChildStartsOverWithoutDisturbingParent) {
  AnonRegion r(16);
  r.touch_all();
  ASSERT_EQ(h().reset_for({{r.base, 16 * kPg}}), 0);
  r.page(3)[0] = 5;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child's view: inherited state is not its tracking; reset() starts over with its
    // own descriptors (the inherited ones still point at the parent's address space).
    int code = 0;
    if (h().tracked(r.base)) code |= 1;
    if (h().reset_for({{r.base, 16 * kPg}}) != 0) code |= 2;
    r.page(7)[0] = 6;
    ScanResult s = h().scan(r.base, 16);
    if (s.rc != 0 || s.written != std::set<size_t>{7}) code |= 4;
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  ScanResult s = h().scan(r.base, 16);
  ASSERT_EQ(s.rc, 0);
  EXPECT_EQ(s.written, (std::set<size_t>{3})) << "the child's reset must not touch the parent";
}

TEST_P(DirtyTrackerTest, ForgetAfterRestoreThenInitAgain) {
  AnonRegion r(8);
  r.touch_all();
  ASSERT_EQ(h().reset_for({{r.base, 8 * kPg}}), 0);
  int fds[4];
  const int nfd = h().t.owned_fds(fds, 4);
  ASSERT_GT(nfd, 0);
  for (int i = 0; i < nfd; i++) EXPECT_GE(fcntl(fds[i], F_GETFD), 0);
  // Simulate a restore: the object came back, its descriptors did not.
  std::vector<int> stale(fds, fds + nfd);
  h().t.forget_after_restore();
  EXPECT_FALSE(h().t.armed());
  EXPECT_EQ(h().t.owned_fds(fds, 4), 0);
  for (int fd : stale) EXPECT_GE(fcntl(fd, F_GETFD), 0) << "forget must not close anything";
  std::string err;
  ASSERT_TRUE(h().init(&err)) << err;
  for (int fd : stale) close(fd);  // what the restored process would not have had
  ASSERT_EQ(h().reset_for({{r.base, 8 * kPg}}), 0);
  r.page(1)[0] = 2;
  ScanResult s = h().scan(r.base, 8);
  ASSERT_EQ(s.rc, 0);
  EXPECT_EQ(s.written, (std::set<size_t>{1}));
}

TEST_P(DirtyTrackerTest, ClosedDescriptorsAreReopenedByReset) {
  AnonRegion r(8);
  r.touch_all();
  ASSERT_EQ(h().reset_for({{r.base, 8 * kPg}}), 0);
  int fds[4];
  const int nfd = h().t.owned_fds(fds, 4);
  for (int i = 0; i < nfd; i++) close(fds[i]);  // an application closing "all" fds
  EXPECT_FALSE(h().tracked(r.base));
  ASSERT_EQ(h().reset_for({{r.base, 8 * kPg}}), 0);
  EXPECT_TRUE(h().tracked(r.base));
  r.page(6)[0] = 2;
  ScanResult s = h().scan(r.base, 8);
  ASSERT_EQ(s.rc, 0);
  EXPECT_EQ(s.written, (std::set<size_t>{6}));
}

TEST_P(DirtyTrackerTest, WholeProcessReset) {
  AnonRegion r(8);
  r.touch_all();
  ASSERT_EQ(h().reset_all(), 0);
  EXPECT_GT(h().t.last_reset_stats().regions_tracked, 3u);
  r.page(2)[0] = 4;
  // Every tracked region of the process scans without error.
  std::pmr::monotonic_buffer_resource mr;
  auto maps = read_maps(&mr);
  size_t tracked = 0;
  for (const MapEntry& m : maps) {
    if (!h().t.region_tracked(m)) continue;
    ++tracked;
    std::pmr::vector<PageRun> w(&mr), u(&mr);
    PageCounts c;
    RegionClass rc = classify_region(m, false);
    EXPECT_EQ(h().t.scan_region(m, rc.select, w, u, c, &mr), 0)
        << m.path << " " << std::hex << m.start;
  }
  EXPECT_GT(tracked, 3u);
  ScanResult s = h().scan(r.base, 8);
  ASSERT_EQ(s.rc, 0);
  EXPECT_EQ(s.written, (std::set<size_t>{2}));
  // The store and descriptors are the tracker's own.
  uint64_t st[4], en[4];
  const int n = h().t.owned_ranges(st, en, 4);
  for (int i = 0; i < n; i++) {
    const MapEntry* m = entry_at(maps, reinterpret_cast<void*>(st[i]));
    ASSERT_NE(m, nullptr);
    EXPECT_FALSE(h().t.region_tracked(*m)) << "the store is never tracked";
  }
}

// Kernels before 6.7 have no PAGEMAP_SCAN: the hash backend then reads pagemap words, which
// cannot tell the shared zero page from a data page (such a page is then written).
TEST(DirtyTrackerFallback, HashBackendOnPagemapWords) {
  TrackerHarness h(DirtyBackend::kHash);
  h.t.set_pagemap_fallback(true);
  std::string err;
  ASSERT_TRUE(h.init(&err)) << err;
  AnonRegion r(64);
  for (size_t i = 0; i < 48; i++) r.page(i)[0] = 1;  // 48..63 never touched
  ASSERT_EQ(h.reset_for({{r.base, 64 * kPg}}), 0);
  for (size_t i : {2, 30, 31}) r.page(i)[9] = 5;
  ASSERT_EQ(madvise(r.page(40), kPg, MADV_DONTNEED), 0);
  volatile char sink = r.page(50)[0];  // zero page: looks present here
  (void)sink;
  r.page(60)[0] = 1;  // new page
  ScanResult s = h.scan(r.base, 64);
  ASSERT_EQ(s.rc, 0);
  std::set<size_t> w = s.written;
  w.erase(50);  // allowed either way (conservative)
  EXPECT_EQ(w, (std::set<size_t>{2, 30, 31, 60}));
  EXPECT_EQ(s.unchanged, range_set(0, 48, {2, 30, 31, 40}));

  TrackerHarness u(DirtyBackend::kUffdWp);
  u.t.set_pagemap_fallback(true);
  EXPECT_FALSE(u.init(&err)) << "uffd needs PAGEMAP_SCAN";
  EXPECT_NE(err.find("PAGEMAP_SCAN"), std::string::npos) << err;
}

INSTANTIATE_TEST_SUITE_P(Backends, DirtyTrackerTest,
                         ::testing::Values(DirtyBackend::kUffdWp, DirtyBackend::kSoftDirty,
                                           DirtyBackend::kHash),
                         [](const ::testing::TestParamInfo<DirtyBackend>& i) {
                           return name_of(i.param);
                         });

// ---------------------------------------------------------------------------------------
// uffd specifics

TEST(DirtyTrackerUffd, UserModeOnlyDescriptorTracksKernelWritesToo) {
  if (!DirtyTracker::probe(DirtyBackend::kUffdWp, nullptr)) GTEST_SKIP() << "no uffd-wp async";
  TrackerHarness h(DirtyBackend::kUffdWp);
  h.t.set_uffd_user_mode_only(true);  // what vm.unprivileged_userfaultfd=0 imposes
  std::string err;
  ASSERT_TRUE(h.init(&err)) << err;
  AnonRegion r(8);
  r.touch_all();
  ASSERT_EQ(h.reset_for({{r.base, 8 * kPg}}), 0);
  r.page(1)[0] = 3;
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(write(p[1], "xy", 2), 2);
  ASSERT_EQ(read(p[0], r.page(5), 2), 2);
  close(p[0]);
  close(p[1]);
  ScanResult s = h.scan(r.base, 8);
  ASSERT_EQ(s.rc, 0);
  EXPECT_EQ(s.written, (std::set<size_t>{1, 5}));
}

TEST(DirtyTrackerUffd, HolesStayHolesAfterReset) {
  // reset() must not plant uffd-wp markers in empty PTEs: the kernel reports them as
  // swapped pages, and every later full scan would save them.
  if (!DirtyTracker::probe(DirtyBackend::kUffdWp, nullptr)) GTEST_SKIP() << "no uffd-wp async";
  TrackerHarness h(DirtyBackend::kUffdWp);
  std::string err;
  ASSERT_TRUE(h.init(&err)) << err;
  AnonRegion r(64);
  r.page(0)[0] = 1;
  ASSERT_EQ(h.reset_for({{r.base, 64 * kPg}}), 0);
  PageScanner ps;
  ASSERT_EQ(ps.open_self(), 0);
  std::pmr::monotonic_buffer_resource mr;
  std::pmr::vector<PageRun> runs(&mr);
  PageCounts c;
  ASSERT_EQ(
      ps.scan(reinterpret_cast<uintptr_t>(r.base), reinterpret_cast<uintptr_t>(r.base) + 64 * kPg,
              PageSelect::kPresentOrSwapped, runs, c),
      0);
  EXPECT_EQ(c.selected, 1u);
  EXPECT_EQ(c.absent, 63u);
}

TEST(DirtyTrackerUffd, RegionOfAnotherUserfaultfdIsNotOurs) {
  if (!DirtyTracker::probe(DirtyBackend::kUffdWp, nullptr)) GTEST_SKIP() << "no uffd-wp async";
  TrackerHarness mine(DirtyBackend::kUffdWp), theirs(DirtyBackend::kUffdWp);
  std::string err;
  ASSERT_TRUE(mine.init(&err)) << err;
  ASSERT_TRUE(theirs.init(&err)) << err;
  AnonRegion a(8), b(8);
  a.touch_all();
  b.touch_all();
  ASSERT_EQ(theirs.reset_for({{b.base, 8 * kPg}}), 0);  // the application's own uffd-wp
  ASSERT_EQ(mine.reset_for({{a.base, 8 * kPg}, {b.base, 8 * kPg}}), 0);
  EXPECT_EQ(mine.t.last_reset_stats().regions_refused, 1u);
  EXPECT_TRUE(mine.tracked(a.base));
  EXPECT_FALSE(mine.tracked(b.base)) << "shows \"uw\", but not registered with our context";
}

TEST(DirtyTrackerUffd, ThpWriteIsExactAfterSplit) {
  if (!DirtyTracker::probe(DirtyBackend::kUffdWp, nullptr)) GTEST_SKIP() << "no uffd-wp async";
  TrackerHarness h(DirtyBackend::kUffdWp);
  std::string err;
  ASSERT_TRUE(h.init(&err)) << err;
  AnonRegion r(1024, /*thp=*/true);
  memset(r.base, 1, 1024 * kPg);
  ASSERT_EQ(h.reset_for({{r.base, 1024 * kPg}}), 0);
  r.page(3)[0] = 2;
  r.page(700)[0] = 2;
  ScanResult s = h.scan(r.base, 1024);
  ASSERT_EQ(s.rc, 0);
  EXPECT_EQ(s.written, (std::set<size_t>{3, 700}));
  EXPECT_EQ(s.unchanged.size(), 1022u);
}

}  // namespace
}  // namespace ocr
