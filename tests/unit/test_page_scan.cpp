// Unit tests of PageScanner: build address ranges whose page states are known (written,
// read-only = shared zero page, untouched, copied-on-write file pages, shared anonymous)
// and check runs and counts exactly, once through PAGEMAP_SCAN and once through the
// /proc/self/pagemap fallback.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>

#include <gtest/gtest.h>

#include "crs/page_scan.h"
#include "crs/scratch_arena.h"

// Counts every malloc/calloc/realloc of the process (operator new goes through malloc),
// delegating to glibc's allocator. Not under ASan, whose interceptors own malloc.
#if !defined(__SANITIZE_ADDRESS__)
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
}
static std::atomic<long> g_allocs{0};
extern "C" void* malloc(size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
extern "C" void* calloc(size_t n, size_t m) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, m);
}
extern "C" void* realloc(void* p, size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
static long alloc_count() {
  return g_allocs.load(std::memory_order_relaxed);
}
#else
static long alloc_count() {
  return 0;
}
#endif

namespace ocr {

// gtest prints these on mismatch.
bool operator==(const PageRun& a, const PageRun& b) {
  return a.addr == b.addr && a.npages == b.npages;
}
void PrintTo(const PageRun& r, std::ostream* os) {
  *os << "{0x" << std::hex << r.addr << std::dec << ", " << r.npages << "}";
}

namespace {

constexpr size_t kPage = 4096;

enum class Backend { kIoctl, kPagemap };

std::string backend_name(const ::testing::TestParamInfo<Backend>& i) {
  return i.param == Backend::kIoctl ? "PagemapScanIoctl" : "PagemapFallback";
}

// Maps `pages` anonymous pages; THP off so that one touch means one page.
char* map_anon(size_t pages, int flags = MAP_PRIVATE | MAP_ANONYMOUS) {
  void* p = mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  madvise(p, pages * kPage, MADV_NOHUGEPAGE);
  return static_cast<char*>(p);
}

void write_pages(char* base, std::initializer_list<int> pages) {
  for (int i : pages) base[i * kPage + 17] = static_cast<char>(i + 1);
}

void read_pages(char* base, std::initializer_list<int> pages) {
  for (int i : pages) {
    volatile char c = *static_cast<volatile char*>(base + i * kPage);
    (void)c;
  }
}

class PageScanTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(arena_.ok());
    ASSERT_EQ(scanner_.open_self(), 0);
    if (GetParam() == Backend::kIoctl) {
      if (!scanner_.has_pagemap_scan()) GTEST_SKIP() << "kernel without PAGEMAP_SCAN";
    } else {
      scanner_.force_pagemap_fallback(true);
      ASSERT_FALSE(scanner_.has_pagemap_scan());
    }
  }
  void TearDown() override {
    for (auto& [p, n] : maps_) munmap(p, n * kPage);
  }
  char* anon(size_t pages, int flags = MAP_PRIVATE | MAP_ANONYMOUS) {
    char* p = map_anon(pages, flags);
    EXPECT_NE(p, nullptr) << strerror(errno);
    if (p) maps_.push_back({p, pages});
    return p;
  }
  bool ioctl_backend() const { return GetParam() == Backend::kIoctl; }

  // Scans and returns the runs, checking that the scan itself allocates nothing but from
  // the arena-backed vector.
  std::pmr::vector<PageRun> scan(const char* start, size_t pages, PageSelect sel,
                                 PageCounts* counts) {
    std::pmr::vector<PageRun> runs(&arena_);
    runs.reserve(16);
    const PageCounts c0 = *counts;
    const long before = alloc_count();
    int rc = scanner_.scan(reinterpret_cast<uint64_t>(start),
                           reinterpret_cast<uint64_t>(start) + pages * kPage, sel, runs, *counts);
    EXPECT_EQ(alloc_count(), before) << "scan called malloc";
    EXPECT_EQ(rc, 0) << strerror(-rc);
    EXPECT_EQ(counts->selected + counts->zero + counts->absent + counts->file_clean -
                  (c0.selected + c0.zero + c0.absent + c0.file_clean),
              pages)
        << "every page is counted exactly once";
    uint64_t in_runs = 0;
    for (const PageRun& r : runs) in_runs += r.npages;
    EXPECT_EQ(in_runs, counts->selected - c0.selected);
    return runs;
  }
  static PageRun run(const char* base, int first, uint64_t n) {
    return PageRun{reinterpret_cast<uint64_t>(base) + first * kPage, n};
  }

  ScratchArena arena_{size_t{64} << 20};
  PageScanner scanner_;
  std::vector<std::pair<char*, size_t>> maps_;
};

TEST_P(PageScanTest, PrivateAnonymousWrittenReadAndUntouched) {
  char* m = anon(16);
  ASSERT_NE(m, nullptr);
  write_pages(m, {0, 1, 2, 5, 9, 15});
  read_pages(m, {3, 7, 12});  // read faults map the shared zero page

  PageCounts c;
  auto runs = scan(m, 16, PageSelect::kPresentOrSwapped, &c);
  if (ioctl_backend()) {
    // Zero-page mappings are told apart: page 3 breaks the first run.
    EXPECT_EQ(runs,
              (std::pmr::vector<PageRun>{run(m, 0, 3), run(m, 5, 1), run(m, 9, 1), run(m, 15, 1)}));
    EXPECT_EQ(c.selected, 6u);
    EXPECT_EQ(c.zero, 3u);
  } else {
    // What the fallback guarantees: every page that exists is selected (never fewer), and
    // zero-page mappings are among them because pagemap shows them as present.
    EXPECT_EQ(runs, (std::pmr::vector<PageRun>{run(m, 0, 4), run(m, 5, 1), run(m, 7, 1),
                                               run(m, 9, 1), run(m, 12, 1), run(m, 15, 1)}));
    EXPECT_EQ(c.selected, 9u);
    EXPECT_EQ(c.zero, 0u);
  }
  EXPECT_EQ(c.absent, 7u);
  EXPECT_EQ(c.file_clean, 0u);
}

TEST_P(PageScanTest, SubRangeAndCountsAccumulate) {
  char* m = anon(16);
  ASSERT_NE(m, nullptr);
  write_pages(m, {0, 1, 2, 3, 4, 5, 6, 7});
  PageCounts c;
  c.absent = 100;  // counts are added to, not reset
  auto runs = scan(m + 2 * kPage, 8, PageSelect::kPresentOrSwapped, &c);
  EXPECT_EQ(runs, (std::pmr::vector<PageRun>{run(m, 2, 6)}));
  EXPECT_EQ(c.selected, 6u);
  EXPECT_EQ(c.absent, 102u);
}

TEST_P(PageScanTest, RunsAreNotMergedAcrossCalls) {
  char* m = anon(8);
  ASSERT_NE(m, nullptr);
  write_pages(m, {0, 1, 2, 3, 4, 5, 6, 7});
  std::pmr::vector<PageRun> runs(&arena_);
  PageCounts c;
  const uint64_t b = reinterpret_cast<uint64_t>(m);
  ASSERT_EQ(scanner_.scan(b, b + 4 * kPage, PageSelect::kPresentOrSwapped, runs, c), 0);
  ASSERT_EQ(scanner_.scan(b + 4 * kPage, b + 8 * kPage, PageSelect::kPresentOrSwapped, runs, c), 0);
  EXPECT_EQ(runs, (std::pmr::vector<PageRun>{run(m, 0, 4), run(m, 4, 4)}));
  EXPECT_EQ(c.selected, 8u);
}

TEST_P(PageScanTest, UnmappedHoleCountsAsAbsent) {
  char* m = anon(6);
  ASSERT_NE(m, nullptr);
  write_pages(m, {0, 1, 2, 3, 4, 5});
  ASSERT_EQ(munmap(m + 2 * kPage, 2 * kPage), 0);
  PageCounts c;
  auto runs = scan(m, 6, PageSelect::kPresentOrSwapped, &c);
  EXPECT_EQ(runs, (std::pmr::vector<PageRun>{run(m, 0, 2), run(m, 4, 2)}));
  EXPECT_EQ(c.absent, 2u);
}

// More runs than one ioctl call returns (512 regions per call): the scan must continue
// from walk_end. Also more pages than one pagemap pread covers.
TEST_P(PageScanTest, ManyRunsNeedSeveralCalls) {
  constexpr int kPages = 4096;
  char* m = anon(kPages);
  ASSERT_NE(m, nullptr);
  for (int i = 0; i < kPages; i += 2) m[i * kPage] = 1;
  std::pmr::vector<PageRun> runs(&arena_);
  PageCounts c;
  const uint64_t b = reinterpret_cast<uint64_t>(m);
  ASSERT_EQ(scanner_.scan(b, b + kPages * kPage, PageSelect::kPresentOrSwapped, runs, c), 0);
  ASSERT_EQ(runs.size(), size_t{kPages / 2});
  for (int i = 0; i < kPages / 2; ++i) ASSERT_EQ(runs[i], run(m, 2 * i, 1)) << i;
  EXPECT_EQ(c.selected, uint64_t{kPages / 2});
  EXPECT_EQ(c.absent, uint64_t{kPages / 2});
}

TEST_P(PageScanTest, PrivateFileMappingSelectsOnlyCopiedPages) {
  char path[] = "/tmp/ocr_page_scan_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  char buf[kPage];
  for (int i = 0; i < 8; ++i) {
    memset(buf, 'a' + i, sizeof(buf));
    ASSERT_EQ(write(fd, buf, sizeof(buf)), ssize_t(sizeof(buf)));
  }
  void* p = mmap(nullptr, 8 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  close(fd);
  ASSERT_NE(p, MAP_FAILED);
  char* m = static_cast<char*>(p);
  maps_.push_back({m, 8});
  read_pages(m, {0, 1, 2, 3, 4, 5, 6, 7});
  write_pages(m, {2, 6});  // copy on write: these two become anonymous

  PageCounts c;
  auto runs = scan(m, 8, PageSelect::kPrivateCopies, &c);
  EXPECT_EQ(runs, (std::pmr::vector<PageRun>{run(m, 2, 1), run(m, 6, 1)}));
  EXPECT_EQ(c.selected, 2u);
  EXPECT_EQ(c.file_clean, 6u);
  EXPECT_EQ(c.absent, 0u);
  EXPECT_EQ(c.zero, 0u);

  // The same range under the anonymous policy keeps every present page.
  PageCounts all;
  runs = scan(m, 8, PageSelect::kPresentOrSwapped, &all);
  EXPECT_EQ(runs, (std::pmr::vector<PageRun>{run(m, 0, 8)}));
  EXPECT_EQ(all.selected, 8u);
}

TEST_P(PageScanTest, SharedAnonymousTouchedPagesAreSelected) {
  char* m = anon(8, MAP_SHARED | MAP_ANONYMOUS);
  ASSERT_NE(m, nullptr);
  write_pages(m, {1, 2, 6});
  PageCounts c;
  auto runs = scan(m, 8, PageSelect::kPresentOrSwapped, &c);
  EXPECT_EQ(runs, (std::pmr::vector<PageRun>{run(m, 1, 2), run(m, 6, 1)}));
  EXPECT_EQ(c.selected, 3u);
  EXPECT_EQ(c.absent, 5u);
  EXPECT_EQ(c.zero, 0u);

  // shmem pages are not anonymous pages to the kernel (PAGE_IS_FILE / pagemap bit 61),
  // which is why shared anonymous memory must not use kPrivateCopies.
  PageCounts f;
  runs = scan(m, 8, PageSelect::kPrivateCopies, &f);
  EXPECT_TRUE(runs.empty());
  EXPECT_EQ(f.file_clean, 3u);
}

// A page of shared memory written only by another process is in the shmem object but
// not in our page tables: kPresentOrSwapped misses it, kPresentOrResident finds it.
TEST_P(PageScanTest, SharedAnonymousPageWrittenByAnotherProcess) {
  char* m = anon(8, MAP_SHARED | MAP_ANONYMOUS);
  ASSERT_NE(m, nullptr);
  write_pages(m, {0});
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    m[5 * kPage] = 42;
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));

  PageCounts c;
  auto runs = scan(m, 8, PageSelect::kPresentOrSwapped, &c);
  EXPECT_EQ(runs, (std::pmr::vector<PageRun>{run(m, 0, 1)}));
  EXPECT_EQ(c.absent, 7u);

  PageCounts r;
  runs = scan(m, 8, PageSelect::kPresentOrResident, &r);
  EXPECT_EQ(runs, (std::pmr::vector<PageRun>{run(m, 0, 1), run(m, 5, 1)}));
  EXPECT_EQ(r.selected, 2u);
  EXPECT_EQ(r.resident_only, 1u);
  EXPECT_EQ(r.absent, 6u);
  EXPECT_EQ(m[5 * kPage], 42);  // the data the image must not lose
}

// A private mapping of a deleted file: pages we never faulted in exist only in the page
// cache of a file nobody can reopen.
TEST_P(PageScanTest, PrivateMappingOfDeletedFileKeepsResidentPages) {
  char path[] = "/tmp/ocr_page_scan_del_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  char buf[kPage];
  for (int i = 0; i < 64; ++i) {
    memset(buf, 'a' + i % 26, sizeof(buf));
    ASSERT_EQ(write(fd, buf, sizeof(buf)), ssize_t(sizeof(buf)));
  }
  void* p = mmap(nullptr, 64 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  close(fd);
  unlink(path);
  ASSERT_NE(p, MAP_FAILED);
  char* m = static_cast<char*>(p);
  maps_.push_back({m, 64});
  write_pages(m, {40});  // one private copy; fault-around may map a few clean neighbours

  PageCounts c;
  auto runs = scan(m, 64, PageSelect::kPresentOrResident, &c);
  EXPECT_EQ(runs, (std::pmr::vector<PageRun>{run(m, 0, 64)}));  // the file was just written
  EXPECT_EQ(c.selected, 64u);
  EXPECT_GE(c.resident_only, 40u);
  EXPECT_LT(c.resident_only, 64u);
}

TEST_P(PageScanTest, ResidencyProbeLeavesPrivateAnonymousAbsentPagesAbsent) {
  char* m = anon(8);
  ASSERT_NE(m, nullptr);
  write_pages(m, {2});
  PageCounts c;
  auto runs = scan(m, 8, PageSelect::kPresentOrResident, &c);
  EXPECT_EQ(runs, (std::pmr::vector<PageRun>{run(m, 2, 1)}));
  EXPECT_EQ(c.absent, 7u);
  EXPECT_EQ(c.resident_only, 0u);
}

TEST_P(PageScanTest, RejectsBadRanges) {
  char* m = anon(2);
  ASSERT_NE(m, nullptr);
  std::pmr::vector<PageRun> runs(&arena_);
  PageCounts c;
  const uint64_t b = reinterpret_cast<uint64_t>(m);
  EXPECT_EQ(scanner_.scan(b + 1, b + kPage, PageSelect::kPresentOrSwapped, runs, c), -EINVAL);
  EXPECT_EQ(scanner_.scan(b, b + 100, PageSelect::kPresentOrSwapped, runs, c), -EINVAL);
  EXPECT_EQ(scanner_.scan(b + kPage, b, PageSelect::kPresentOrSwapped, runs, c), -EINVAL);
  EXPECT_EQ(scanner_.scan(b, b, PageSelect::kPresentOrSwapped, runs, c), 0);
  // [vsyscall] lies above user space; neither interface can walk it.
  const uint64_t vsys = 0xffffffffff600000ull;
  EXPECT_LT(scanner_.scan(vsys, vsys + kPage, PageSelect::kPresentOrSwapped, runs, c), 0);
  EXPECT_TRUE(runs.empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, PageScanTest,
                         ::testing::Values(Backend::kIoctl, Backend::kPagemap), backend_name);

TEST(PageScanner, ScanBeforeOpenFails) {
  ScratchArena arena(1 << 20);
  PageScanner s;
  std::pmr::vector<PageRun> runs(&arena);
  PageCounts c;
  EXPECT_EQ(s.scan(0x10000, 0x20000, PageSelect::kPresentOrSwapped, runs, c), -EBADF);
}

// The probe must find the ioctl wherever the kernel is new enough to have it (6.7+): a
// probe that silently fails would put every checkpoint on the slower, zero-page-blind path.
TEST(PageScanner, ProbeFindsPagemapScanOnNewKernels) {
  struct utsname u;
  ASSERT_EQ(uname(&u), 0);
  int major = 0, minor = 0;
  ASSERT_EQ(sscanf(u.release, "%d.%d", &major, &minor), 2);
  PageScanner s;
  ASSERT_EQ(s.open_self(), 0);
  if (major > 6 || (major == 6 && minor >= 7))
    EXPECT_TRUE(s.has_pagemap_scan()) << u.release;
  else
    GTEST_SKIP() << "kernel " << u.release << " predates PAGEMAP_SCAN";
  s.force_pagemap_fallback(true);
  EXPECT_FALSE(s.has_pagemap_scan());
  s.force_pagemap_fallback(false);
  EXPECT_TRUE(s.has_pagemap_scan());
}

}  // namespace
}  // namespace ocr
