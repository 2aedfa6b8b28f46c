// Parser for /proc/<pid>/maps and /proc/<pid>/smaps, the first step of the memory scan.
// It runs on the checkpoint path while application threads are frozen, so it never
// touches the heap: every byte it needs comes from the caller's memory_resource, and
// errors are static strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <string>
#include <string_view>
#include <vector>

namespace ocr {

// Our own stable numbering of the kernel's smaps "VmFlags:" mnemonics (the kernel's bit
// positions are internal and differ between versions and architectures).
// See proc(5) and show_smap_vma_flags() in fs/proc/task_mmu.c.
constexpr uint64_t OCR_VMF_READ = 1ull << 0;           // rd
constexpr uint64_t OCR_VMF_WRITE = 1ull << 1;          // wr
constexpr uint64_t OCR_VMF_EXEC = 1ull << 2;           // ex
constexpr uint64_t OCR_VMF_SHARED = 1ull << 3;         // sh
constexpr uint64_t OCR_VMF_MAYREAD = 1ull << 4;        // mr
constexpr uint64_t OCR_VMF_MAYWRITE = 1ull << 5;       // mw
constexpr uint64_t OCR_VMF_MAYEXEC = 1ull << 6;        // me
constexpr uint64_t OCR_VMF_MAYSHARE = 1ull << 7;       // ms
constexpr uint64_t OCR_VMF_GROWSDOWN = 1ull << 8;      // gd
constexpr uint64_t OCR_VMF_PFNMAP = 1ull << 9;         // pf
constexpr uint64_t OCR_VMF_LOCKED = 1ull << 10;        // lo
constexpr uint64_t OCR_VMF_IO = 1ull << 11;            // io
constexpr uint64_t OCR_VMF_SEQ_READ = 1ull << 12;      // sr
constexpr uint64_t OCR_VMF_RAND_READ = 1ull << 13;     // rr
constexpr uint64_t OCR_VMF_DONTCOPY = 1ull << 14;      // dc
constexpr uint64_t OCR_VMF_DONTEXPAND = 1ull << 15;    // de
constexpr uint64_t OCR_VMF_LOCKONFAULT = 1ull << 16;   // lf
constexpr uint64_t OCR_VMF_ACCOUNT = 1ull << 17;       // ac
constexpr uint64_t OCR_VMF_NORESERVE = 1ull << 18;     // nr
constexpr uint64_t OCR_VMF_HUGETLB = 1ull << 19;       // ht
constexpr uint64_t OCR_VMF_SYNC = 1ull << 20;          // sf
constexpr uint64_t OCR_VMF_ARCH_1 = 1ull << 21;        // ar (VM_PAT on x86)
constexpr uint64_t OCR_VMF_WIPEONFORK = 1ull << 22;    // wf
constexpr uint64_t OCR_VMF_DONTDUMP = 1ull << 23;      // dd
constexpr uint64_t OCR_VMF_SOFTDIRTY = 1ull << 24;     // sd
constexpr uint64_t OCR_VMF_MIXEDMAP = 1ull << 25;      // mm
constexpr uint64_t OCR_VMF_HUGEPAGE = 1ull << 26;      // hg
constexpr uint64_t OCR_VMF_NOHUGEPAGE = 1ull << 27;    // nh
constexpr uint64_t OCR_VMF_MERGEABLE = 1ull << 28;     // mg
constexpr uint64_t OCR_VMF_UFFD_MISSING = 1ull << 29;  // um
constexpr uint64_t OCR_VMF_UFFD_WP = 1ull << 30;       // uw
constexpr uint64_t OCR_VMF_UFFD_MINOR = 1ull << 31;    // ui
constexpr uint64_t OCR_VMF_SHADOW_STACK = 1ull << 32;  // ss
constexpr uint64_t OCR_VMF_DROPPABLE = 1ull << 33;     // dp
constexpr uint64_t OCR_VMF_SEALED = 1ull << 34;        // sl
constexpr uint64_t OCR_VMF_ARM64_BTI = 1ull << 35;     // bt
constexpr uint64_t OCR_VMF_ARM64_MTE = 1ull << 36;     // mt
constexpr uint64_t OCR_VMF_MAYOVERLAY = 1ull << 37;    // mo / ov (no-MMU kernels)
// A mnemonic this code does not know (newer kernel). Never an error: the policy only
// looks at known bits, but the caller can report it.
constexpr uint64_t OCR_VMF_UNKNOWN = 1ull << 63;

// Maps a two-letter VmFlags mnemonic to its OCR_VMF_* bit; OCR_VMF_UNKNOWN if unknown.
uint64_t vm_flag_from_mnemonic(std::string_view code);

struct MapEntry {
  uint64_t start = 0, end = 0;  // [start, end)
  uint32_t prot = 0;            // PROT_READ|PROT_WRITE|PROT_EXEC from "rwxp"
  bool shared = false;          // 's' vs 'p'
  uint64_t offset = 0;          // file offset
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  std::pmr::string path;  // pathname column as printed, minus a trailing " (deleted)"
  bool deleted = false;   // the path ended with " (deleted)"
  uint64_t vm_flags = 0;  // OCR_VMF_* bits from smaps "VmFlags:" (0 when parsing plain maps)

  explicit MapEntry(std::pmr::memory_resource* mr) : path(mr) {}
  // A plain copy of a pmr::string lands on the default (malloc) resource; a copy of an
  // entry stays on the source's resource instead, so copying is safe on the checkpoint path.
  MapEntry(const MapEntry& o) : MapEntry(o, o.path.get_allocator().resource()) {}
  MapEntry(const MapEntry& o, std::pmr::memory_resource* mr);
  MapEntry(MapEntry&&) noexcept = default;
  MapEntry& operator=(const MapEntry&) = default;  // keeps this->path's resource
  MapEntry& operator=(MapEntry&&) = default;

  uint64_t size() const { return end - start; }
  bool has_vm_flag(uint64_t f) const { return (vm_flags & f) != 0; }
};

// Parses /proc/<pid>/maps text or /proc/<pid>/smaps text (smaps: each mapping line is
// followed by "Key:   value" lines; only VmFlags matters). Appends one entry per mapping
// to `out` (entries take their strings from out's resource). Returns 0, or -EINVAL with
// *error set to a static message; on error `out` is left as it was on entry.
int parse_proc_maps(std::string_view text, std::pmr::vector<MapEntry>& out, const char** error);

// Reads a whole file (e.g. /proc/self/smaps, which can't be stat-sized) into memory from mr,
// growing by doubling (copy into a new block; the old block is handed back to mr, which
// for a ScratchArena means abandoned). No malloc.
// Returns the text (valid while mr's memory is), or an empty view with *err = errno value;
// *err = 0 on success (an empty file gives an empty view and *err = 0).
std::string_view read_whole_file(const char* path, std::pmr::memory_resource* mr, int* err);

}  // namespace ocr
