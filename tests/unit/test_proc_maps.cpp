// Unit tests of the maps/smaps parser and read_whole_file: handcrafted texts for every
// shape the kernel prints (and malformed ones), then the live /proc/self/smaps against
// mappings made by the test. A malloc counter proves the parse path never touches the heap.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "crs/proc_maps.h"
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
#define OCR_COUNTS_MALLOC 1
#else
static long alloc_count() {
  return 0;
}
#define OCR_COUNTS_MALLOC 0
#endif

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

namespace ocr {
namespace {

constexpr size_t kPage = 4096;

class ProcMapsTest : public ::testing::Test {
 protected:
  ScratchArena arena_{size_t{256} << 20};
  std::pmr::vector<MapEntry> maps_{&arena_};
  const char* error_ = nullptr;

  int parse(std::string_view text) { return parse_proc_maps(text, maps_, &error_); }

  const MapEntry* find_start(uint64_t start) const {
    for (const MapEntry& e : maps_)
      if (e.start == start) return &e;
    return nullptr;
  }
  const MapEntry* find_path(std::string_view path) const {
    for (const MapEntry& e : maps_)
      if (e.path == path) return &e;
    return nullptr;
  }
};

// The zero-allocation checks below mean something only if the counter sees allocations.
TEST(MallocCounter, SeesHeapAllocations) {
  if (!OCR_COUNTS_MALLOC) GTEST_SKIP() << "malloc is owned by the sanitizer runtime";
  const long before = alloc_count();
  std::string* s = new std::string(100, 'x');
  EXPECT_GE(alloc_count(), before + 2);
  delete s;
}

// Real kernel output shapes, including the column padding (the path starts at a fixed
// column only when the numbers are short) and anonymous lines with and without the
// trailing blank.
constexpr const char kMapsText[] =
    "558c4091f000-558c40921000 r--p 00000000 fe:00 247134                     /usr/bin/cat\n"
    "558c40921000-558c40926000 r-xp 00002000 fe:00 247134                     /usr/bin/cat\n"
    "558c465c0000-558c465e1000 rw-p 00000000 00:00 0                          [heap]\n"
    "7fc6e3773000-7fc6e3795000 rw-p 00000000 00:00 0 \n"
    "7fc6e3795000-7fc6e3796000 rw-p 00000000 00:00 0\n"
    "7fc6e3796000-7fc6e3797000 rw-s 00000000 00:01 2050                       /dev/zero (deleted)\n"
    "7fc6e3797000-7fc6e3799000 r--p 00001000 103:02 98765  "
    "/tmp/my dir/a file  with spaces.bin\n"
    "7fc6e3799000-7fc6e379a000 rw-p 00003000 fe:00 1234   /tmp/gone (deleted)\n"
    "7fc6e379a000-7fc6e379b000 rw-s 00000000 00:01 77     /memfd:ring buf (deleted)\n"
    "7fc6e379b000-7fc6e379c000 rw-s 00000000 00:01 32768  /SYSV0000abcd (deleted)\n"
    "7fc6e379c000-7fc6e379d000 rw-p 00000000 00:00 0      [anon:xyz]\n"
    "7fc6e379d000-7fc6e379e000 rw-p 00000000 00:00 0      [anon:with space]\n"
    "7fc6e379e000-7fc6e379f000 rw-p 00000000 00:00 0      [stack:1234]\n"
    "7fc6e39e5000-7fc6e39e9000 r--p 00000000 00:00 0                          [vvar]\n"
    "7fc6e39e9000-7fc6e39eb000 r--p 00000000 00:00 0                          [vvar_vclock]\n"
    "7fc6e39eb000-7fc6e39ed000 r-xp 00000000 00:00 0                          [vdso]\n"
    "7ffe3ffde000-7ffe3ffff000 rw-p 00000000 00:00 0                          [stack]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

TEST_F(ProcMapsTest, ParsesEveryLineShapeOfPlainMaps) {
  const long allocs_before = alloc_count();
  ASSERT_EQ(parse(kMapsText), 0) << error_;
  EXPECT_EQ(alloc_count(), allocs_before) << "parse_proc_maps called malloc";
  ASSERT_EQ(maps_.size(), 18u);

  const MapEntry& text = maps_[1];
  EXPECT_EQ(text.start, 0x558c40921000u);
  EXPECT_EQ(text.end, 0x558c40926000u);
  EXPECT_EQ(text.size(), 0x5000u);
  EXPECT_EQ(text.prot, unsigned(PROT_READ | PROT_EXEC));
  EXPECT_FALSE(text.shared);
  EXPECT_EQ(text.offset, 0x2000u);
  EXPECT_EQ(text.dev_major, 0xfeu);
  EXPECT_EQ(text.dev_minor, 0u);
  EXPECT_EQ(text.inode, 247134u);
  EXPECT_EQ(text.path, "/usr/bin/cat");
  EXPECT_FALSE(text.deleted);
  EXPECT_EQ(text.vm_flags, 0u);  // plain maps carry no VmFlags

  EXPECT_EQ(maps_[2].path, "[heap]");
  EXPECT_EQ(maps_[2].prot, unsigned(PROT_READ | PROT_WRITE));
  EXPECT_EQ(maps_[3].path, "");  // anonymous, trailing blank
  EXPECT_EQ(maps_[3].inode, 0u);
  EXPECT_EQ(maps_[4].path, "");  // anonymous, no trailing blank
  EXPECT_EQ(maps_[4].end, 0x7fc6e3796000u);

  EXPECT_TRUE(maps_[5].shared);
  EXPECT_EQ(maps_[5].path, "/dev/zero");
  EXPECT_TRUE(maps_[5].deleted);
  EXPECT_EQ(maps_[5].dev_minor, 1u);

  // Runs of blanks inside a path are part of it; the device major is 3 hex digits.
  EXPECT_EQ(maps_[6].path, "/tmp/my dir/a file  with spaces.bin");
  EXPECT_EQ(maps_[6].dev_major, 0x103u);
  EXPECT_EQ(maps_[6].dev_minor, 2u);
  EXPECT_EQ(maps_[6].offset, 0x1000u);
  EXPECT_EQ(maps_[6].prot, unsigned(PROT_READ));

  EXPECT_EQ(maps_[7].path, "/tmp/gone");
  EXPECT_TRUE(maps_[7].deleted);
  EXPECT_FALSE(maps_[7].shared);
  EXPECT_EQ(maps_[8].path, "/memfd:ring buf");
  EXPECT_TRUE(maps_[8].deleted);
  EXPECT_EQ(maps_[9].path, "/SYSV0000abcd");
  EXPECT_EQ(maps_[9].inode, 32768u);
  EXPECT_EQ(maps_[10].path, "[anon:xyz]");
  EXPECT_EQ(maps_[11].path, "[anon:with space]");
  EXPECT_EQ(maps_[12].path, "[stack:1234]");
  EXPECT_EQ(maps_[13].path, "[vvar]");
  EXPECT_EQ(maps_[14].path, "[vvar_vclock]");
  EXPECT_EQ(maps_[15].path, "[vdso]");
  EXPECT_EQ(maps_[16].path, "[stack]");

  const MapEntry& vsys = maps_[17];
  EXPECT_EQ(vsys.start, 0xffffffffff600000u);
  EXPECT_EQ(vsys.end, 0xffffffffff601000u);
  EXPECT_EQ(vsys.prot, unsigned(PROT_EXEC));
  EXPECT_EQ(vsys.path, "[vsyscall]");

  // Paths live in the arena, not on the heap.
  for (const MapEntry& e : maps_)
    EXPECT_EQ(e.path.get_allocator().resource(), static_cast<std::pmr::memory_resource*>(&arena_));
}

TEST_F(ProcMapsTest, ParsesSmapsAndVmFlags) {
  constexpr const char kSmaps[] =
      "7fc6e39e5000-7fc6e39e9000 r--p 00000000 00:00 0                          [vvar]\n"
      "Size:                 16 kB\n"
      "KernelPageSize:        4 kB\n"
      "Rss:                   0 kB\n"
      "Anonymous:             0 kB\n"
      "AnonHugePages:         0 kB\n"
      "Shared_Hugetlb:        0 kB\n"
      "THPeligible:           0\n"
      "ProtectionKey:         0\n"
      "VmFlags: rd mr pf io de dd \n"
      "7ffe3ffde000-7ffe3ffff000 rw-p 00000000 00:00 0                          [stack]\n"
      "Size:                132 kB\n"
      "VmFlags: rd wr mr mw me gd ac \n"
      "7f0000000000-7f0000200000 rw-s 00000000 00:0f 4242   /anon_hugepage (deleted)\n"
      "VmFlags: rd wr sh mr mw me ms de ht \n"
      "7f0000200000-7f0000201000 rw-p 00000000 00:00 0 \n"
      "VmFlags: rd wr ex sh mr mw me ms gd pf lo io sr rr dc de lf ac nr ht sf ar wf dd sd mm "
      "hg nh mg um uw ui ss dp sl\n"
      "7f0000201000-7f0000202000 rw-p 00000000 00:00 0 \n"
      "VmFlags: rd zz mr\n"
      "7f0000202000-7f0000203000 rw-p 00000000 00:00 0 \n"
      "Size:                  4 kB\n";  // no VmFlags line at all (very old kernels)
  ASSERT_EQ(parse(kSmaps), 0) << error_;
  ASSERT_EQ(maps_.size(), 6u);

  const MapEntry& vvar = maps_[0];
  EXPECT_EQ(vvar.path, "[vvar]");
  EXPECT_EQ(vvar.vm_flags, OCR_VMF_READ | OCR_VMF_MAYREAD | OCR_VMF_PFNMAP | OCR_VMF_IO |
                               OCR_VMF_DONTEXPAND | OCR_VMF_DONTDUMP);
  EXPECT_TRUE(maps_[1].has_vm_flag(OCR_VMF_GROWSDOWN));
  EXPECT_FALSE(maps_[1].has_vm_flag(OCR_VMF_SHARED));
  EXPECT_TRUE(maps_[2].has_vm_flag(OCR_VMF_HUGETLB));
  EXPECT_TRUE(maps_[2].has_vm_flag(OCR_VMF_SHARED));
  EXPECT_TRUE(maps_[2].deleted);

  const uint64_t all = maps_[3].vm_flags;
  for (uint64_t bit :
       {OCR_VMF_READ,         OCR_VMF_WRITE,        OCR_VMF_EXEC,       OCR_VMF_SHARED,
        OCR_VMF_MAYREAD,      OCR_VMF_MAYWRITE,     OCR_VMF_MAYEXEC,    OCR_VMF_MAYSHARE,
        OCR_VMF_GROWSDOWN,    OCR_VMF_PFNMAP,       OCR_VMF_LOCKED,     OCR_VMF_IO,
        OCR_VMF_SEQ_READ,     OCR_VMF_RAND_READ,    OCR_VMF_DONTCOPY,   OCR_VMF_DONTEXPAND,
        OCR_VMF_LOCKONFAULT,  OCR_VMF_ACCOUNT,      OCR_VMF_NORESERVE,  OCR_VMF_HUGETLB,
        OCR_VMF_SYNC,         OCR_VMF_ARCH_1,       OCR_VMF_WIPEONFORK, OCR_VMF_DONTDUMP,
        OCR_VMF_SOFTDIRTY,    OCR_VMF_MIXEDMAP,     OCR_VMF_HUGEPAGE,   OCR_VMF_NOHUGEPAGE,
        OCR_VMF_MERGEABLE,    OCR_VMF_UFFD_MISSING, OCR_VMF_UFFD_WP,    OCR_VMF_UFFD_MINOR,
        OCR_VMF_SHADOW_STACK, OCR_VMF_DROPPABLE,    OCR_VMF_SEALED})
    EXPECT_TRUE(all & bit) << std::hex << bit;
  EXPECT_FALSE(all & OCR_VMF_UNKNOWN);

  // An unknown mnemonic is recorded, not an error.
  EXPECT_EQ(maps_[4].vm_flags, OCR_VMF_READ | OCR_VMF_MAYREAD | OCR_VMF_UNKNOWN);
  EXPECT_EQ(maps_[5].vm_flags, 0u);
}

TEST(VmFlagMnemonic, MapsCodesToDistinctBits) {
  const char* codes[] = {"rd", "wr", "ex", "sh", "mr", "mw", "me", "ms", "gd", "pf",
                         "lo", "io", "sr", "rr", "dc", "de", "lf", "ac", "nr", "ht",
                         "sf", "ar", "wf", "dd", "sd", "mm", "hg", "nh", "mg", "um",
                         "uw", "ui", "ss", "dp", "sl", "bt", "mt", "mo"};
  uint64_t seen = 0;
  for (const char* c : codes) {
    uint64_t b = vm_flag_from_mnemonic(c);
    EXPECT_NE(b, OCR_VMF_UNKNOWN) << c;
    EXPECT_EQ(seen & b, 0u) << c << " shares a bit";
    seen |= b;
  }
  EXPECT_EQ(vm_flag_from_mnemonic("io"), OCR_VMF_IO);
  EXPECT_EQ(vm_flag_from_mnemonic("um"), OCR_VMF_UFFD_MISSING);
  EXPECT_EQ(vm_flag_from_mnemonic("uw"), OCR_VMF_UFFD_WP);
  EXPECT_EQ(vm_flag_from_mnemonic("xx"), OCR_VMF_UNKNOWN);
  EXPECT_EQ(vm_flag_from_mnemonic("r"), OCR_VMF_UNKNOWN);
  EXPECT_EQ(vm_flag_from_mnemonic("rdx"), OCR_VMF_UNKNOWN);
}

TEST_F(ProcMapsTest, TextWithoutFinalNewlineAndBlankLines) {
  ASSERT_EQ(parse("\n1000-2000 rw-p 00000000 00:00 0\n\n3000-4000 r--p 0 08:01 5 /a b"), 0)
      << error_;
  ASSERT_EQ(maps_.size(), 2u);
  EXPECT_EQ(maps_[1].path, "/a b");
  EXPECT_EQ(maps_[1].dev_major, 8u);
  EXPECT_EQ(maps_[1].inode, 5u);
  maps_.clear();
  EXPECT_EQ(parse(""), 0);
  EXPECT_TRUE(maps_.empty());
}

TEST_F(ProcMapsTest, DeletedSuffixOnlyAtTheEnd) {
  ASSERT_EQ(parse("1000-2000 rw-p 0 00:00 7 /x (deleted)/y\n"
                  "2000-3000 rw-p 0 00:00 7  (deleted)\n"),
            0)
      << error_;
  EXPECT_EQ(maps_[0].path, "/x (deleted)/y");
  EXPECT_FALSE(maps_[0].deleted);
  // Nothing before the suffix: keep the text as the path rather than invent an empty one.
  EXPECT_EQ(maps_[1].path, "(deleted)");
}

TEST_F(ProcMapsTest, MalformedInputIsRejectedAndLeavesOutputUntouched) {
  const char* bad[] = {
      "zz000-2000 rw-p 00000000 00:00 0\n",                       // not hex
      "1000 2000 rw-p 00000000 00:00 0\n",                        // no dash: not a mapping line
      "1000-2000rw-p 00000000 00:00 0\n",                         // no blank
      "1000-2000 rwzp 00000000 00:00 0\n",                        // bad exec char
      "1000-2000 rw-x 00000000 00:00 0\n",                        // bad shared char
      "1000-2000 rw- 00000000 00:00 0\n",                         // 3 permission chars
      "1000-2000 rw-p\n",                                         // truncated
      "1000-2000 rw-p 00000000\n",                                // truncated
      "1000-2000 rw-p 00000000 0000 0\n",                         // device without colon
      "1000-2000 rw-p 00000000 00:00\n",                          // no inode
      "1000-2000 rw-p 00000000 00:00 12x /a\n",                   // inode not decimal
      "1000-2000 rw-p 00000000 00:00 99999999999999999999 /a\n",  // inode overflow
      "2000-1000 rw-p 00000000 00:00 0\n",                        // reversed
      "1000-1000 rw-p 00000000 00:00 0\n",                        // empty
      "10000000000000000-10000000000001000 rw-p 0 00:00 0\n",     // 17 hex digits
      "1000-2000 rw-p 00000000 100000000:00 0\n",                 // major beyond 32 bits
      "VmFlags: rd wr\n1000-2000 rw-p 0 00:00 0\n",               // attribute before any mapping
      "1000-2000 rw-p 0 00:00 0\nhello world\n",                  // garbage line
      "1000-2000 rw-p 0 00:00 0\nSome Key: 1\n",                  // key with a blank
      "1000-2000 rw-p 0 00:00 0\n: 1\n",                          // empty key
  };
  for (const char* text : bad) {
    maps_.clear();
    maps_.emplace_back(&arena_);  // an entry from an earlier parse must survive
    maps_.back().path = "keep";
    error_ = nullptr;
    EXPECT_EQ(parse(text), -EINVAL) << text;
    EXPECT_NE(error_, nullptr) << text;
    ASSERT_EQ(maps_.size(), 1u) << text;
    EXPECT_EQ(maps_[0].path, "keep");
  }
}

TEST_F(ProcMapsTest, EntryCopiesStayOnTheSourceResource) {
  MapEntry a(&arena_);
  a.path = "/a/path/long/enough/to/defeat/the/small/string/optimisation";
  a.start = 0x1000;
  const long allocs_before = alloc_count();
  MapEntry b(a);
  std::pmr::vector<MapEntry> v(&arena_);
  v.push_back(a);
  v.push_back(std::move(b));
  for (int i = 0; i < 64; ++i) v.push_back(a);  // reallocations move, never copy to the heap
  EXPECT_EQ(alloc_count(), allocs_before);
  EXPECT_EQ(v[1].path, a.path);
  EXPECT_EQ(v[1].start, 0x1000u);
  EXPECT_EQ(v[0].path.get_allocator().resource(), static_cast<std::pmr::memory_resource*>(&arena_));
}

TEST_F(ProcMapsTest, ReadWholeFileGrowsPastItsFirstBlock) {
  char tmpl[] = "/tmp/ocr_read_whole_XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  std::string content;
  for (int i = 0; content.size() < 300 * 1024; ++i) content += "line " + std::to_string(i) + "\n";
  ASSERT_EQ(write(fd, content.data(), content.size()), ssize_t(content.size()));
  close(fd);

  int err = -1;
  const long allocs_before = alloc_count();
  std::string_view text = read_whole_file(tmpl, &arena_, &err);
  EXPECT_EQ(alloc_count(), allocs_before);
  unlink(tmpl);
  EXPECT_EQ(err, 0);
  EXPECT_EQ(text, content);
  EXPECT_GE(reinterpret_cast<uintptr_t>(text.data()), arena_.begin());
  EXPECT_LT(reinterpret_cast<uintptr_t>(text.data()), arena_.end());
}

TEST_F(ProcMapsTest, ReadWholeFileReportsErrno) {
  int err = 0;
  std::string_view text = read_whole_file("/nonexistent/ocr/file", &arena_, &err);
  EXPECT_TRUE(text.empty());
  EXPECT_EQ(err, ENOENT);
  text = read_whole_file("/proc/self", &arena_, &err);  // a directory: read fails
  EXPECT_TRUE(text.empty());
  EXPECT_EQ(err, EISDIR);
  text = read_whole_file("/dev/null", &arena_, &err);
  EXPECT_TRUE(text.empty());
  EXPECT_EQ(err, 0);
}

// Mappings made here must come back from the live /proc/self/smaps with the right fields.
class LiveSmapsTest : public ProcMapsTest {
 protected:
  void SetUp() override {
    char dir_tmpl[] = "/tmp/ocr maps XXXXXX";  // a blank in the directory name on purpose
    ASSERT_NE(mkdtemp(dir_tmpl), nullptr);
    dir_ = dir_tmpl;
  }
  void TearDown() override {
    for (auto& [p, n] : maps_made_) munmap(p, n);
    for (const std::string& f : files_) unlink(f.c_str());
    rmdir(dir_.c_str());
  }
  void* map(size_t len, int prot, int flags, int fd = -1, off_t off = 0) {
    void* p = mmap(nullptr, len, prot, flags, fd, off);
    EXPECT_NE(p, MAP_FAILED) << strerror(errno);
    if (p != MAP_FAILED) maps_made_.push_back({p, len});
    return p;
  }
  int make_file(const std::string& name, size_t pages, struct stat* st) {
    std::string path = dir_ + "/" + name;
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0) << path;
    files_.push_back(path);
    EXPECT_EQ(ftruncate(fd, off_t(pages * kPage)), 0);
    fstat(fd, st);
    return fd;
  }
  void read_smaps() {
    int err = 0;
    const long allocs_before = alloc_count();
    std::string_view text = read_whole_file("/proc/self/smaps", &arena_, &err);
    ASSERT_EQ(err, 0);
    ASSERT_FALSE(text.empty());
    ASSERT_EQ(parse(text), 0) << error_;
    EXPECT_EQ(alloc_count(), allocs_before) << "reading + parsing smaps called malloc";
  }

  std::string dir_;
  std::vector<std::pair<void*, size_t>> maps_made_;
  std::vector<std::string> files_;
};

TEST_F(LiveSmapsTest, FindsFreshMappingsWithTheirAttributes) {
  auto* rx = map(4 * kPage, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS);
  auto* shared = map(2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  auto* dd = map(3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  ASSERT_EQ(madvise(dd, 3 * kPage, MADV_DONTDUMP), 0);
  auto* gd = map(2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN);

  struct stat st_sp {};
  const std::string spaced = "a file (with) spaces.bin";
  int fd = make_file(spaced, 3, &st_sp);
  auto* file = map(kPage, PROT_READ, MAP_PRIVATE, fd, kPage);
  close(fd);

  struct stat st_del {};
  fd = make_file("doomed", 1, &st_del);
  auto* gone = map(kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  ASSERT_EQ(unlink(files_.back().c_str()), 0);
  files_.pop_back();

  read_smaps();

  const MapEntry* e = find_start(reinterpret_cast<uint64_t>(rx));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->end, e->start + 4 * kPage);
  EXPECT_EQ(e->prot, unsigned(PROT_READ | PROT_EXEC));
  EXPECT_FALSE(e->shared);
  EXPECT_EQ(e->path, "");
  EXPECT_EQ(e->inode, 0u);
  EXPECT_TRUE(e->has_vm_flag(OCR_VMF_READ));
  EXPECT_TRUE(e->has_vm_flag(OCR_VMF_EXEC));
  EXPECT_TRUE(e->has_vm_flag(OCR_VMF_MAYWRITE));
  EXPECT_FALSE(e->has_vm_flag(OCR_VMF_WRITE));
  EXPECT_FALSE(e->has_vm_flag(OCR_VMF_UNKNOWN));

  e = find_start(reinterpret_cast<uint64_t>(shared));
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->shared);
  EXPECT_EQ(e->path, "/dev/zero");  // how the kernel names shared anonymous memory
  EXPECT_TRUE(e->deleted);
  EXPECT_NE(e->inode, 0u);
  EXPECT_TRUE(e->has_vm_flag(OCR_VMF_SHARED | OCR_VMF_MAYSHARE));
  EXPECT_TRUE(e->has_vm_flag(OCR_VMF_WRITE));

  e = find_start(reinterpret_cast<uint64_t>(dd));
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->has_vm_flag(OCR_VMF_DONTDUMP));

  e = find_start(reinterpret_cast<uint64_t>(gd));
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->has_vm_flag(OCR_VMF_GROWSDOWN));

  e = find_start(reinterpret_cast<uint64_t>(file));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(std::string_view(e->path), dir_ + "/" + spaced);
  EXPECT_FALSE(e->deleted);
  EXPECT_EQ(e->offset, kPage);
  EXPECT_EQ(e->inode, st_sp.st_ino);
  EXPECT_EQ(e->dev_major, major(st_sp.st_dev));
  EXPECT_EQ(e->dev_minor, minor(st_sp.st_dev));
  EXPECT_EQ(e->prot, unsigned(PROT_READ));

  e = find_start(reinterpret_cast<uint64_t>(gone));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(std::string_view(e->path), dir_ + "/doomed");
  EXPECT_TRUE(e->deleted);
  EXPECT_TRUE(e->shared);
  EXPECT_EQ(e->inode, st_del.st_ino);

  // The process's own special mappings.
  const MapEntry* stack = find_path("[stack]");
  ASSERT_NE(stack, nullptr);
  EXPECT_TRUE(stack->has_vm_flag(OCR_VMF_GROWSDOWN));
  // glibc's malloc has used brk by now (ASan's allocator never does).
  if (const MapEntry* heap = find_path("[heap]")) {
    EXPECT_EQ(heap->prot, unsigned(PROT_READ | PROT_WRITE));
    EXPECT_EQ(heap->inode, 0u);
  } else {
    EXPECT_FALSE(OCR_COUNTS_MALLOC) << "no [heap] although glibc malloc is in use";
  }
  const MapEntry* vdso = find_path("[vdso]");
  ASSERT_NE(vdso, nullptr);
  EXPECT_EQ(vdso->prot, unsigned(PROT_READ | PROT_EXEC));
  const MapEntry* vvar = find_path("[vvar]");
  ASSERT_NE(vvar, nullptr);
  EXPECT_TRUE(vvar->has_vm_flag(OCR_VMF_IO | OCR_VMF_PFNMAP));

  // Entries come in address order and never overlap.
  for (size_t i = 1; i < maps_.size(); ++i) EXPECT_LE(maps_[i - 1].end, maps_[i].start);
}

TEST_F(LiveSmapsTest, NamedAnonymousMemory) {
  auto* p = map(2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, reinterpret_cast<unsigned long>(p), 2 * kPage,
            reinterpret_cast<unsigned long>("ocr test name")) != 0)
    GTEST_SKIP() << "kernel without CONFIG_ANON_VMA_NAME: " << strerror(errno);
  read_smaps();
  const MapEntry* e = find_start(reinterpret_cast<uint64_t>(p));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->path, "[anon:ocr test name]");
  EXPECT_EQ(e->inode, 0u);
}

TEST_F(LiveSmapsTest, PlainMapsMatchesSmaps) {
  read_smaps();
  std::pmr::vector<MapEntry> plain(&arena_);
  int err = 0;
  std::string_view text = read_whole_file("/proc/self/maps", &arena_, &err);
  ASSERT_EQ(err, 0);
  ASSERT_EQ(parse_proc_maps(text, plain, &error_), 0) << error_;
  // The two reads are not atomic; compare the stable, low part (program and libraries).
  ASSERT_GT(plain.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(plain[i].start, maps_[i].start);
    EXPECT_EQ(plain[i].path, maps_[i].path);
    EXPECT_EQ(plain[i].vm_flags, 0u);
    EXPECT_NE(maps_[i].vm_flags, 0u);
  }
}

}  // namespace
}  // namespace ocr
