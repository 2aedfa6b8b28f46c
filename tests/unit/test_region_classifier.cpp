// Unit tests of classify_region: one test per policy rule of DESIGN.md section 4 step 2,
// plus the precedence between rules, on entries built by hand; then every mapping of
// this very process, to catch a shape the handmade entries forgot.
#include <sys/mman.h>

#include <gtest/gtest.h>

#include "crs/proc_maps.h"
#include "crs/region_classifier.h"
#include "crs/scratch_arena.h"

namespace ocr {
namespace {

class RegionClassifierTest : public ::testing::Test {
 protected:
  ScratchArena arena_{size_t{16} << 20};

  MapEntry entry(std::string_view path, bool shared, uint64_t inode, uint64_t vm_flags = 0,
                 bool deleted = false) {
    MapEntry e(&arena_);
    e.start = 0x7f0000000000;
    e.end = e.start + 0x4000;
    e.prot = PROT_READ | PROT_WRITE;
    e.shared = shared;
    e.inode = inode;
    e.path = path;
    e.deleted = deleted;
    e.vm_flags = vm_flags;
    if (inode) {
      e.dev_major = 0xfe;
      e.dev_minor = 0;
    }
    return e;
  }
  static void expect_skipped(const RegionClass& c, uint32_t reason) {
    EXPECT_EQ(c.kind, uint32_t{OCR_REGION_SKIPPED});
    EXPECT_EQ(c.skip_reason, reason);
    EXPECT_FALSE(c.needs_file);
  }
  static void expect_kind(const RegionClass& c, uint32_t kind, PageSelect sel, bool needs_file) {
    EXPECT_EQ(c.kind, kind);
    EXPECT_EQ(c.skip_reason, uint32_t{OCR_SKIP_REASONS});
    if (kind != OCR_REGION_FILE_SHARED) {
      EXPECT_EQ(c.select, sel);
    }
    EXPECT_EQ(c.needs_file, needs_file);
  }
};

TEST_F(RegionClassifierTest, RuntimeOwnedIsSkippedWhateverItIs) {
  expect_skipped(classify_region(entry("", false, 0), true), OCR_SKIP_RUNTIME);
  expect_skipped(classify_region(entry("/usr/lib/libompi-cr.so", false, 12), true),
                 OCR_SKIP_RUNTIME);
  // Runtime ownership wins over every other rule, device flags included.
  expect_skipped(classify_region(entry("[vdso]", false, 0, OCR_VMF_IO), true), OCR_SKIP_RUNTIME);
}

TEST_F(RegionClassifierTest, KernelSpecialMappingsAreSkipped) {
  for (const char* p : {"[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]", "[uprobes]"}) {
    SCOPED_TRACE(p);
    // [vvar] really carries "pf io": the kernel reason must win over the device one.
    expect_skipped(classify_region(entry(p, false, 0, OCR_VMF_IO | OCR_VMF_PFNMAP), false),
                   OCR_SKIP_KERNEL);
    expect_skipped(classify_region(entry(p, false, 0), false), OCR_SKIP_KERNEL);
  }
  // Only exact names: a file called like that is an ordinary file.
  expect_kind(classify_region(entry("/tmp/[vdso]", false, 9), false), OCR_REGION_FILE_PRIVATE,
              PageSelect::kPrivateCopies, true);
}

TEST_F(RegionClassifierTest, DeviceMappingsAreSkipped) {
  expect_skipped(classify_region(entry("/dev/dri/card0", true, 400, OCR_VMF_IO), false),
                 OCR_SKIP_DEVICE);
  expect_skipped(classify_region(entry("/dev/mem", false, 401, OCR_VMF_PFNMAP), false),
                 OCR_SKIP_DEVICE);
  expect_skipped(classify_region(entry("anon_inode:[io_uring]", true, 5, OCR_VMF_PFNMAP), false),
                 OCR_SKIP_DEVICE);
  // Plain maps (no VmFlags) cannot tell: the device file is then just a shared file.
  expect_kind(classify_region(entry("/dev/dri/card0", true, 400), false), OCR_REGION_FILE_SHARED,
              PageSelect::kPresentOrSwapped, true);
}

TEST_F(RegionClassifierTest, HugetlbIsSkippedForNow) {
  expect_skipped(classify_region(entry("/anon_hugepage", true, 4242, OCR_VMF_HUGETLB, true), false),
                 OCR_SKIP_DEVICE);
  expect_skipped(classify_region(entry("", false, 0, OCR_VMF_HUGETLB), false), OCR_SKIP_DEVICE);
  expect_skipped(
      classify_region(entry("/dev/hugepages/seg", true, 77, OCR_VMF_HUGETLB | OCR_VMF_SHARED),
                      false),
      OCR_SKIP_DEVICE);
}

TEST_F(RegionClassifierTest, PrivateFileMappingKeepsOnlyCopiedPages) {
  auto c = classify_region(entry("/usr/lib/x86_64-linux-gnu/libc.so.6", false, 332835), false);
  expect_kind(c, OCR_REGION_FILE_PRIVATE, PageSelect::kPrivateCopies, true);
  EXPECT_EQ(c.flags, 0u);
  expect_kind(classify_region(entry("/tmp/a dir/with spaces.bin", false, 5), false),
              OCR_REGION_FILE_PRIVATE, PageSelect::kPrivateCopies, true);
}

TEST_F(RegionClassifierTest, SharedFileMappingNeedsOnlyTheFile) {
  auto c = classify_region(entry("/var/data/table.db", true, 991), false);
  EXPECT_EQ(c.kind, uint32_t{OCR_REGION_FILE_SHARED});
  EXPECT_EQ(c.skip_reason, uint32_t{OCR_SKIP_REASONS});
  EXPECT_TRUE(c.needs_file);
  // POSIX shared memory lives in a real tmpfs file that can be reopened.
  EXPECT_EQ(classify_region(entry("/dev/shm/ocr-seg", true, 17), false).kind,
            uint32_t{OCR_REGION_FILE_SHARED});
}

TEST_F(RegionClassifierTest, PrivateAnonymousMemory) {
  for (const char* p :
       {"", "[heap]", "[stack]", "[anon:xyz]", "[anon:with space]", "[stack:1234]"}) {
    SCOPED_TRACE(p);
    expect_kind(classify_region(entry(p, false, 0), false), OCR_REGION_ANON_PRIVATE,
                PageSelect::kPresentOrSwapped, false);
  }
  // MAP_PRIVATE of /dev/zero is anonymous memory in all but name.
  expect_kind(classify_region(entry("/dev/zero", false, 6), false), OCR_REGION_ANON_PRIVATE,
              PageSelect::kPresentOrSwapped, false);
}

TEST_F(RegionClassifierTest, PrivateMappingOfDeletedFileKeepsTheBytes) {
  // The file is gone: every page that holds data, including file pages we never
  // faulted in but the page cache still has, travels in the image.
  expect_kind(classify_region(entry("/usr/lib/libfoo.so.1", false, 1234, 0, true), false),
              OCR_REGION_ANON_PRIVATE, PageSelect::kPresentOrResident, false);
  expect_kind(classify_region(entry("/memfd:jit", false, 88, 0, true), false),
              OCR_REGION_ANON_PRIVATE, PageSelect::kPresentOrResident, false);
}

TEST_F(RegionClassifierTest, SharedAnonymousMemoryIsSaved) {
  struct Case {
    const char* path;
    uint64_t inode;
    bool deleted;
  } cases[] = {
      {"/dev/zero", 2050, true},       // MAP_SHARED|MAP_ANONYMOUS
      {"/dev/zero", 6, false},         // MAP_SHARED of /dev/zero as printed by old kernels
      {"/SYSV0000abcd", 32768, true},  // shmat
      {"/SYSV0000abcd", 32768, false},
      {"/memfd:ring buf", 77, true},  // memfd_create + MAP_SHARED
      {"/memfd:ring buf", 77, false},
      {"/tmp/gone", 1234, true},  // deleted file
      {"", 0, false},             // shared and nameless
      {"[anon_shmem:name]", 99, false},
      {"anon_inode:[perf_event]", 10, false},  // shared, no file to reopen
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.path);
    auto c = classify_region(entry(k.path, true, k.inode, 0, k.deleted), false);
    expect_kind(c, OCR_REGION_ANON_SHARED, PageSelect::kPresentOrResident, false);
  }
}

TEST_F(RegionClassifierTest, HeapStackAndGrowsdownFlags) {
  EXPECT_EQ(classify_region(entry("[heap]", false, 0), false).flags, uint32_t{OCR_REGION_HEAP});
  EXPECT_EQ(classify_region(entry("[stack]", false, 0, OCR_VMF_GROWSDOWN), false).flags,
            uint32_t{OCR_REGION_STACK | OCR_REGION_GROWSDOWN});
  EXPECT_EQ(classify_region(entry("[stack]", false, 0), false).flags, uint32_t{OCR_REGION_STACK});
  EXPECT_EQ(classify_region(entry("", false, 0, OCR_VMF_GROWSDOWN), false).flags,
            uint32_t{OCR_REGION_GROWSDOWN});
  // A thread stack named by old kernels is not the main stack.
  EXPECT_EQ(classify_region(entry("[stack:42]", false, 0), false).flags, 0u);
  EXPECT_EQ(classify_region(entry("", false, 0), false).flags, 0u);
}

// Every mapping of this process gets a sensible class.
TEST_F(RegionClassifierTest, LiveProcessMappings) {
  int err = 0;
  std::string_view text = read_whole_file("/proc/self/smaps", &arena_, &err);
  ASSERT_EQ(err, 0);
  std::pmr::vector<MapEntry> maps(&arena_);
  const char* error = nullptr;
  ASSERT_EQ(parse_proc_maps(text, maps, &error), 0) << error;
  int file_private = 0, anon_private = 0, kernel = 0;
  for (const MapEntry& e : maps) {
    SCOPED_TRACE(std::string(e.path));
    RegionClass c = classify_region(e, false);
    if (e.path == "[heap]") {
      EXPECT_EQ(c.kind, uint32_t{OCR_REGION_ANON_PRIVATE});
    }
    if (e.path == "[stack]") {
      EXPECT_EQ(c.kind, uint32_t{OCR_REGION_ANON_PRIVATE});
      EXPECT_EQ(c.flags, uint32_t{OCR_REGION_STACK | OCR_REGION_GROWSDOWN});
    }
    if (c.kind == OCR_REGION_FILE_PRIVATE) ++file_private;
    if (c.kind == OCR_REGION_ANON_PRIVATE) ++anon_private;
    if (c.kind == OCR_REGION_SKIPPED && c.skip_reason == OCR_SKIP_KERNEL) ++kernel;
    // Kernel mappings never count as devices although [vvar] has "pf io".
    if (e.path == "[vvar]") {
      EXPECT_EQ(c.skip_reason, uint32_t{OCR_SKIP_KERNEL});
    }
  }
  EXPECT_GE(file_private, 5);  // the test binary, libc, ld.so, libstdc++...
  EXPECT_GE(anon_private, 2);  // heap, stack
  EXPECT_GE(kernel, 2);        // [vvar], [vdso]
}

}  // namespace
}  // namespace ocr
