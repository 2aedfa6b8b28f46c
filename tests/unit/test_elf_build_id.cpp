// Unit tests of read_elf_build_id: real binaries against readelf's answer, handcrafted
// ELF32/ELF64 files (notes only in sections, 8-byte aligned notes, no build-id), and
// hostile or truncated input that must yield 0 without reading out of bounds.
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "crs/elf_build_id.h"

namespace ocr {
namespace {

std::string hex(const uint8_t* p, size_t n) {
  std::string s;
  char b[3];
  for (size_t i = 0; i < n; ++i) {
    snprintf(b, sizeof(b), "%02x", p[i]);
    s += b;
  }
  return s;
}

// The build-id as `readelf -n` prints it, or "" if it prints none.
std::string readelf_build_id(const std::string& path) {
  std::string cmd = "readelf -n '" + path + "' 2>/dev/null";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return "";
  char line[512];
  std::string id;
  while (fgets(line, sizeof(line), f)) {
    const char* k = strstr(line, "Build ID: ");
    if (k) {
      id = k + strlen("Build ID: ");
      while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    }
  }
  pclose(f);
  return id;
}

std::string self_exe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n < 0) return "";
  return std::string(buf, size_t(n));
}

// An anonymous in-memory file holding `bytes`.
int memfd_with(const std::vector<uint8_t>& bytes) {
  int fd = memfd_create("ocr_elf_test", MFD_CLOEXEC);
  if (fd < 0) return fd;
  if (!bytes.empty() && write(fd, bytes.data(), bytes.size()) != ssize_t(bytes.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::vector<uint8_t> v;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return v;
  uint8_t buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) v.insert(v.end(), buf, buf + n);
  close(fd);
  return v;
}

int build_id_of(const std::vector<uint8_t>& bytes, uint8_t* out, size_t cap) {
  int fd = memfd_with(bytes);
  if (fd < 0) return -1000;
  int r = read_elf_build_id(fd, out, cap);
  close(fd);
  return r;
}

TEST(ElfBuildId, SelfExeMatchesReadelf) {
  const std::string exe = self_exe();
  const std::string expected = readelf_build_id(exe);
  ASSERT_FALSE(expected.empty()) << "readelf found no build-id in " << exe;
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  uint8_t id[64];
  int n = read_elf_build_id(fd, id, sizeof(id));
  close(fd);
  EXPECT_EQ(n, 20);  // gcc/ld default: sha1
  ASSERT_GT(n, 0);
  EXPECT_EQ(hex(id, size_t(n)), expected);
}

// Every shared object loaded here (libc, libstdc++, libgtest, ld.so...) against readelf.
TEST(ElfBuildId, LoadedLibrariesMatchReadelf) {
  std::vector<std::string> libs;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) {
        if (info->dlpi_name && info->dlpi_name[0] == '/')
          static_cast<std::vector<std::string>*>(data)->push_back(info->dlpi_name);
        return 0;
      },
      &libs);
  ASSERT_FALSE(libs.empty());
  for (const std::string& lib : libs) {
    int fd = open(lib.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << lib;
    uint8_t id[64];
    int n = read_elf_build_id(fd, id, sizeof(id));
    close(fd);
    const std::string expected = readelf_build_id(lib);
    EXPECT_EQ(n > 0 ? hex(id, size_t(n)) : "", expected) << lib;
  }
}

TEST(ElfBuildId, SmallCapTruncates) {
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  uint8_t full[64], part[8];
  memset(part, 0xee, sizeof(part));
  ASSERT_EQ(read_elf_build_id(fd, full, sizeof(full)), 20);
  EXPECT_EQ(read_elf_build_id(fd, part, 5), 5);
  EXPECT_EQ(memcmp(part, full, 5), 0);
  EXPECT_EQ(part[5], 0xee);  // nothing written past cap
  EXPECT_EQ(read_elf_build_id(fd, part, 0), 0);
  close(fd);
}

TEST(ElfBuildId, NonElfFilesGiveZero) {
  uint8_t id[64];
  EXPECT_EQ(build_id_of({}, id, sizeof(id)), 0);
  const char* text = "#!/bin/sh\necho this is not an ELF file, but it is long enough to be one\n";
  EXPECT_EQ(build_id_of(std::vector<uint8_t>(text, text + strlen(text)), id, sizeof(id)), 0);
  EXPECT_EQ(build_id_of({0x7f, 'E', 'L', 'F'}, id, sizeof(id)), 0);
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(read_elf_build_id(fd, id, sizeof(id)), 0);
  close(fd);
}

TEST(ElfBuildId, IoErrorIsNegativeErrno) {
  uint8_t id[64];
  EXPECT_EQ(read_elf_build_id(-1, id, sizeof(id)), -EBADF);
  int fd = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(read_elf_build_id(fd, id, sizeof(id)), -EISDIR);
  close(fd);
}

// Every prefix of the real executable: a truncated file yields 0 or the full, correct
// id, and once the notes are inside the prefix the id is found.
TEST(ElfBuildId, TruncatedExecutableNeverMisreads) {
  const std::vector<uint8_t> exe = file_bytes("/proc/self/exe");
  ASSERT_GT(exe.size(), 8192u);
  uint8_t want[64];
  int fd = memfd_with(exe);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(read_elf_build_id(fd, want, sizeof(want)), 20);
  // Shrinking a memfd keeps its prefix (growing would add zeros): walk the lengths down.
  bool lost = false;
  for (size_t len = 8192;; --len) {
    ASSERT_EQ(ftruncate(fd, off_t(len)), 0);
    uint8_t id[64];
    memset(id, 0, sizeof(id));
    int n = read_elf_build_id(fd, id, sizeof(id));
    ASSERT_TRUE(n == 0 || n == 20) << "len " << len << " -> " << n;
    if (n == 20) {
      ASSERT_EQ(memcmp(id, want, 20), 0) << "len " << len;
      ASSERT_FALSE(lost) << "id found again at len " << len << " after it was lost";
    } else {
      if (len == 8192)
        ADD_FAILURE() << "the notes of a gcc-built executable sit in its first 8 KiB";
      lost = true;
    }
    if (len == 0) break;
  }
  close(fd);
}

// ---- handcrafted files ----

void put(std::vector<uint8_t>& f, size_t off, const void* p, size_t n) {
  if (f.size() < off + n) f.resize(off + n);
  memcpy(f.data() + off, p, n);
}

// Appends a note at `off` with the given alignment; returns the offset after it.
size_t put_note(std::vector<uint8_t>& f, size_t off, uint32_t type, const char* name,
                const std::vector<uint8_t>& desc, size_t align) {
  Elf64_Nhdr nh{};
  nh.n_namesz = uint32_t(strlen(name) + 1);
  nh.n_descsz = uint32_t(desc.size());
  nh.n_type = type;
  put(f, off, &nh, sizeof(nh));
  off += sizeof(nh);
  put(f, off, name, nh.n_namesz);
  off += (nh.n_namesz + align - 1) & ~(align - 1);
  if (!desc.empty()) put(f, off, desc.data(), desc.size());
  off += (desc.size() + align - 1) & ~(align - 1);
  if (f.size() < off) f.resize(off);
  return off;
}

const std::vector<uint8_t> kId = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

template <class Ehdr>
Ehdr make_ehdr(unsigned char cls) {
  Ehdr e{};
  memcpy(e.e_ident, ELFMAG, SELFMAG);
  e.e_ident[EI_CLASS] = cls;
  e.e_ident[EI_DATA] = ELFDATA2LSB;
  e.e_ident[EI_VERSION] = EV_CURRENT;
  e.e_type = ET_DYN;
  e.e_version = EV_CURRENT;
  e.e_ehsize = sizeof(Ehdr);
  return e;
}

// ELF64 with notes in one PT_NOTE segment with p_align 8: a property note, then the id.
std::vector<uint8_t> elf64_with_pt_note(bool with_id) {
  std::vector<uint8_t> f(0x200, 0);
  size_t end = put_note(f, 0x100, NT_GNU_PROPERTY_TYPE_0, "GNU", {1, 2, 3, 4, 5, 6, 7, 8, 9}, 8);
  if (with_id) end = put_note(f, end, NT_GNU_BUILD_ID, "GNU", kId, 8);
  auto e = make_ehdr<Elf64_Ehdr>(ELFCLASS64);
  e.e_phoff = sizeof(Elf64_Ehdr);
  e.e_phentsize = sizeof(Elf64_Phdr);
  e.e_phnum = 2;
  Elf64_Phdr ph[2]{};
  ph[0].p_type = PT_LOAD;
  ph[1].p_type = PT_NOTE;
  ph[1].p_offset = 0x100;
  ph[1].p_filesz = end - 0x100;
  ph[1].p_align = 8;
  put(f, 0, &e, sizeof(e));
  put(f, e.e_phoff, ph, sizeof(ph));
  return f;
}

TEST(ElfBuildId, Elf64ProgramHeaderNotesWithEightByteAlignment) {
  uint8_t id[64];
  ASSERT_EQ(build_id_of(elf64_with_pt_note(true), id, sizeof(id)), int(kId.size()));
  EXPECT_EQ(std::vector<uint8_t>(id, id + kId.size()), kId);
  EXPECT_EQ(build_id_of(elf64_with_pt_note(false), id, sizeof(id)), 0);
}

// No program headers (like a relocatable object): the id is found through SHT_NOTE
// sections, after a non-GNU note of the same type number and a GNU note of another type.
template <class Ehdr, class Shdr>
std::vector<uint8_t> elf_with_section_notes(unsigned char cls) {
  std::vector<uint8_t> f(0x100, 0);
  size_t end = put_note(f, 0x100, NT_GNU_BUILD_ID, "Xen", {9, 9, 9, 9}, 4);
  end = put_note(f, end, NT_GNU_ABI_TAG, "GNU", {0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0}, 4);
  end = put_note(f, end, NT_GNU_BUILD_ID, "GNU", kId, 4);
  const size_t shoff = (end + 63) & ~size_t{63};
  auto e = make_ehdr<Ehdr>(cls);
  e.e_shoff = shoff;
  e.e_shentsize = sizeof(Shdr);
  e.e_shnum = 3;
  Shdr sh[3]{};
  sh[1].sh_type = SHT_PROGBITS;
  sh[1].sh_offset = 0x40;
  sh[1].sh_size = 0x10;
  sh[2].sh_type = SHT_NOTE;
  sh[2].sh_offset = 0x100;
  sh[2].sh_size = end - 0x100;
  sh[2].sh_addralign = 4;
  put(f, 0, &e, sizeof(e));
  put(f, shoff, sh, sizeof(sh));
  return f;
}

TEST(ElfBuildId, SectionHeaderFallbackElf64AndElf32) {
  uint8_t id[64];
  ASSERT_EQ(build_id_of(elf_with_section_notes<Elf64_Ehdr, Elf64_Shdr>(ELFCLASS64), id, 64),
            int(kId.size()));
  EXPECT_EQ(std::vector<uint8_t>(id, id + kId.size()), kId);
  memset(id, 0, sizeof(id));
  ASSERT_EQ(build_id_of(elf_with_section_notes<Elf32_Ehdr, Elf32_Shdr>(ELFCLASS32), id, 64),
            int(kId.size()));
  EXPECT_EQ(std::vector<uint8_t>(id, id + kId.size()), kId);
}

TEST(ElfBuildId, BigEndianIsNotOurs) {
  auto f = elf64_with_pt_note(true);
  f[EI_DATA] = ELFDATA2MSB;
  uint8_t id[64];
  EXPECT_EQ(build_id_of(f, id, sizeof(id)), 0);
}

// Hostile headers: each must give 0 (never a crash, a hang or a read past the file).
TEST(ElfBuildId, HostileHeadersGiveZero) {
  uint8_t id[64];
  auto base = elf64_with_pt_note(true);
  auto phdr = [&](std::vector<uint8_t>& f) {
    return reinterpret_cast<Elf64_Phdr*>(f.data() + sizeof(Elf64_Ehdr)) + 1;
  };
  auto ehdr = [](std::vector<uint8_t>& f) { return reinterpret_cast<Elf64_Ehdr*>(f.data()); };
  auto note = [](std::vector<uint8_t>& f, size_t off) {
    return reinterpret_cast<Elf64_Nhdr*>(f.data() + off);
  };
  const size_t id_note = 0x100 + sizeof(Elf64_Nhdr) + 8 + 16;  // after the property note

  std::vector<std::pair<const char*, std::vector<uint8_t>>> cases;
  auto add = [&](const char* what, auto mutate) {
    auto f = base;
    mutate(f);
    cases.push_back({what, f});
  };
  add("segment far past EOF", [&](auto& f) { phdr(f)->p_offset = 1ull << 40; });
  add("segment offset near 2^64", [&](auto& f) { phdr(f)->p_offset = ~0ull - 8; });
  add("segment size near 2^64", [&](auto& f) { phdr(f)->p_filesz = ~0ull; });
  add("program headers past EOF", [&](auto& f) { ehdr(f)->e_phoff = 1ull << 50; });
  add("program header offset wraps", [&](auto& f) { ehdr(f)->e_phoff = ~0ull - 16; });
  add("wrong phentsize", [&](auto& f) { ehdr(f)->e_phentsize = 7; });
  add("PN_XNUM without sections", [&](auto& f) { ehdr(f)->e_phnum = PN_XNUM; });
  add("id namesz huge", [&](auto& f) { note(f, id_note)->n_namesz = 0xffffffffu; });
  add("id descsz past segment", [&](auto& f) { note(f, id_note)->n_descsz = 0x1000; });
  add("id descsz huge", [&](auto& f) { note(f, id_note)->n_descsz = 0xfffffff0u; });
  add("first note swallows the id", [&](auto& f) { note(f, 0x100)->n_descsz = 40; });
  add("segment cuts the id note", [&](auto& f) { phdr(f)->p_filesz -= 8; });
  add("sections past EOF", [&](auto& f) {
    ehdr(f)->e_phnum = 0;
    ehdr(f)->e_shoff = 1ull << 40;
    ehdr(f)->e_shentsize = sizeof(Elf64_Shdr);
    ehdr(f)->e_shnum = 0xffff;
  });
  for (auto& [what, f] : cases) EXPECT_EQ(build_id_of(f, id, sizeof(id)), 0) << what;
}

// Section header 0 claims 2^63 sections, several of them the same run of foreign notes:
// the walk ends at the end of the file instead of trusting the count.
TEST(ElfBuildId, EnormousSectionCountIsBounded) {
  std::vector<uint8_t> f(0x1000, 0);
  auto e = make_ehdr<Elf64_Ehdr>(ELFCLASS64);
  e.e_shoff = 0x100;
  e.e_shentsize = sizeof(Elf64_Shdr);
  e.e_shnum = 0;  // real count in section 0
  put(f, 0, &e, sizeof(e));
  Elf64_Shdr sh{};
  sh.sh_size = 1ull << 63;
  put(f, 0x100, &sh, sizeof(sh));
  // Many 12-byte empty notes of a foreign owner fill the file after the headers.
  for (size_t off = 0x800; off + 16 <= f.size(); off = put_note(f, off, 1, "Q", {}, 4)) {
  }
  sh.sh_type = SHT_NOTE;
  sh.sh_offset = 0x800;
  sh.sh_size = f.size() - 0x800;
  for (size_t i = 1; i < 16; ++i) put(f, 0x100 + i * sizeof(sh), &sh, sizeof(sh));
  uint8_t id[64];
  EXPECT_EQ(build_id_of(f, id, sizeof(id)), 0);
}

// Random byte flips in the headers and notes of a valid file (fixed seed, so failures
// reproduce). The answer must be 0 or a plausible length; run under ASan/UBSan this also
// proves no out-of-bounds access.
TEST(ElfBuildId, MutatedHeadersStayInBounds) {
  const auto base = elf64_with_pt_note(true);
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  auto next = [&rng] {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  };
  uint8_t id[64];
  for (int iter = 0; iter < 3000; ++iter) {
    auto f = base;
    const int flips = 1 + int(next() % 4);
    for (int k = 0; k < flips; ++k) f[next() % f.size()] = uint8_t(next());
    int n = build_id_of(f, id, sizeof(id));
    ASSERT_GE(n, 0) << iter;
    ASSERT_LE(n, 64) << iter;
  }
}

}  // namespace
}  // namespace ocr
