// GNU build-id reader (see elf_build_id.h). The file is untrusted input (any path the
// application mapped), so every header field is range-checked before it becomes an
// offset, and every loop has a fixed budget: a hostile file costs a bounded number of
// small preads and yields "no build-id", never a read outside our stack buffers.
#include "crs/elf_build_id.h"

#include <elf.h>
#include <errno.h>
#include <unistd.h>

#include <climits>
#include <cstring>

namespace ocr {
namespace {

constexpr uint32_t kNtGnuBuildId = 3;  // NT_GNU_BUILD_ID
// Headers and notes looked at per file, all tables together. Real files have a dozen
// program headers, a few dozen sections and a handful of notes.
constexpr uint32_t kMaxHeaders = 1u << 16;
constexpr uint32_t kMaxNotes = 4096;
constexpr size_t kHeaderBatch = 16;  // headers per pread

struct Budget {
  uint32_t headers = kMaxHeaders;
  uint32_t notes = kMaxNotes;
};

// Reads exactly n bytes at off. 1 on success, 0 when the file ends first (truncated
// input, not an I/O error), -errno on failure.
int read_exact(int fd, void* buf, size_t n, uint64_t off) {
  if (off > static_cast<uint64_t>(LLONG_MAX) || n > static_cast<uint64_t>(LLONG_MAX) - off)
    return 0;
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, static_cast<char*>(buf) + got, n - got, static_cast<off_t>(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return 0;
    got += static_cast<size_t>(r);
  }
  return 1;
}

uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) & ~(a - 1);
}

// Walks the notes in [off, off + size). Returns the id length, 0 if there is none (or the
// notes are malformed), -errno on I/O error.
int scan_notes(int fd, uint64_t off, uint64_t size, uint64_t align, uint8_t* out, size_t cap,
               Budget& budget) {
  // 8-byte aligned notes exist (.note.gnu.property in PT_NOTE with p_align 8); anything
  // else uses the classic 4.
  const uint64_t a = align == 8 ? 8 : 4;
  uint64_t end = 0;
  if (__builtin_add_overflow(off, size, &end)) return 0;
  uint64_t p = off;
  while (p < end && end - p >= sizeof(Elf64_Nhdr)) {
    if (budget.notes == 0) return 0;
    --budget.notes;
    Elf64_Nhdr nh;  // same layout as Elf32_Nhdr
    int rc = read_exact(fd, &nh, sizeof(nh), p);
    if (rc <= 0) return rc;
    const uint64_t name_off = p + sizeof(nh);  // end - p >= sizeof(nh): no overflow
    uint64_t desc_off = 0;
    if (__builtin_add_overflow(name_off, align_up(nh.n_namesz, a), &desc_off)) return 0;
    if (desc_off > end || nh.n_descsz > end - desc_off) return 0;
    if (nh.n_type == kNtGnuBuildId && nh.n_namesz == 4 && nh.n_descsz > 0) {
      char name[4];
      rc = read_exact(fd, name, sizeof(name), name_off);
      if (rc <= 0) return rc;
      if (memcmp(name, "GNU", 4) == 0) {
        size_t n = nh.n_descsz;
        if (n > cap) n = cap;
        if (n > static_cast<size_t>(INT_MAX)) n = static_cast<size_t>(INT_MAX);
        if (n == 0) return 0;
        rc = read_exact(fd, out, n, desc_off);
        if (rc <= 0) return rc;
        return static_cast<int>(n);
      }
    }
    // May pass end (the last note's padding): the loop stops.
    if (__builtin_add_overflow(desc_off, align_up(nh.n_descsz, a), &p)) return 0;
  }
  return 0;
}

template <class Ehdr, class Phdr, class Shdr>
int find_build_id(int fd, const Ehdr& eh, uint8_t* out, size_t cap) {
  Budget budget;

  // Section header 0 carries the real counts when they overflow the ELF header fields.
  Shdr sh0{};
  bool have_sh0 = false;
  const bool shdrs_ok = eh.e_shoff != 0 && eh.e_shentsize == sizeof(Shdr);
  if (shdrs_ok) {
    int rc = read_exact(fd, &sh0, sizeof(sh0), eh.e_shoff);
    if (rc < 0) return rc;
    have_sh0 = rc == 1;
  }

  uint64_t phnum = eh.e_phnum;
  if (phnum == PN_XNUM) phnum = have_sh0 ? sh0.sh_info : 0;
  if (eh.e_phoff != 0 && eh.e_phentsize == sizeof(Phdr)) {
    Phdr ph[kHeaderBatch];
    for (uint64_t i = 0; i < phnum && budget.headers > 0;) {
      uint64_t k = phnum - i;
      if (k > kHeaderBatch) k = kHeaderBatch;
      if (k > budget.headers) k = budget.headers;
      budget.headers -= static_cast<uint32_t>(k);
      uint64_t at = 0;
      if (__builtin_add_overflow(eh.e_phoff, i * sizeof(Phdr), &at)) break;
      int rc = read_exact(fd, ph, k * sizeof(Phdr), at);
      if (rc < 0) return rc;
      if (rc == 0) break;  // truncated table: try the sections
      for (uint64_t j = 0; j < k; ++j) {
        if (ph[j].p_type != PT_NOTE) continue;
        rc = scan_notes(fd, ph[j].p_offset, ph[j].p_filesz, ph[j].p_align, out, cap, budget);
        if (rc != 0) return rc;
      }
      i += k;
    }
  }

  if (!have_sh0) return 0;
  uint64_t shnum = eh.e_shnum;
  if (shnum == 0) shnum = sh0.sh_size;  // SHN_UNDEF count: the real one is here
  Shdr sh[kHeaderBatch];
  for (uint64_t i = 0; i < shnum && budget.headers > 0;) {
    uint64_t k = shnum - i;
    if (k > kHeaderBatch) k = kHeaderBatch;
    if (k > budget.headers) k = budget.headers;
    budget.headers -= static_cast<uint32_t>(k);
    uint64_t at = 0;
    if (__builtin_add_overflow(eh.e_shoff, i * sizeof(Shdr), &at)) return 0;
    int rc = read_exact(fd, sh, k * sizeof(Shdr), at);
    if (rc <= 0) return rc;
    for (uint64_t j = 0; j < k; ++j) {
      if (sh[j].sh_type != SHT_NOTE) continue;
      rc = scan_notes(fd, sh[j].sh_offset, sh[j].sh_size, sh[j].sh_addralign, out, cap, budget);
      if (rc != 0) return rc;
    }
    i += k;
  }
  return 0;
}

}  // namespace

int read_elf_build_id(int fd, uint8_t* out, size_t cap) {
  union {
    unsigned char ident[EI_NIDENT];
    Elf32_Ehdr e32;
    Elf64_Ehdr e64;
  } h;
  memset(&h, 0, sizeof(h));
  int rc = read_exact(fd, h.ident, EI_NIDENT, 0);
  if (rc <= 0) return rc;
  if (memcmp(h.ident, ELFMAG, SELFMAG) != 0) return 0;
  if (h.ident[EI_DATA] != ELFDATA2LSB) return 0;  // x86_64 only maps little-endian files
  if (h.ident[EI_CLASS] == ELFCLASS64) {
    rc = read_exact(fd, &h.e64, sizeof(h.e64), 0);
    if (rc <= 0) return rc;
    return find_build_id<Elf64_Ehdr, Elf64_Phdr, Elf64_Shdr>(fd, h.e64, out, cap);
  }
  if (h.ident[EI_CLASS] == ELFCLASS32) {
    rc = read_exact(fd, &h.e32, sizeof(h.e32), 0);
    if (rc <= 0) return rc;
    return find_build_id<Elf32_Ehdr, Elf32_Phdr, Elf32_Shdr>(fd, h.e32, out, cap);
  }
  return 0;
}

}  // namespace ocr
