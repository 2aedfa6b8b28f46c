// Parser for /proc/<pid>/maps and smaps (see proc_maps.h). Hand-written scanning over a
// string_view: no sscanf/strtoull (locale state, and they cannot report the end of a
// field in a view that is not NUL terminated), no allocation except the paths.
#include "crs/proc_maps.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

namespace ocr {

MapEntry::MapEntry(const MapEntry& o, std::pmr::memory_resource* mr)
    : start(o.start),
      end(o.end),
      prot(o.prot),
      shared(o.shared),
      offset(o.offset),
      dev_major(o.dev_major),
      dev_minor(o.dev_minor),
      inode(o.inode),
      path(o.path, mr),
      deleted(o.deleted),
      vm_flags(o.vm_flags) {}

namespace {

struct VmFlagName {
  char code[3];
  uint64_t bit;
};

constexpr VmFlagName kVmFlagNames[] = {
    {"rd", OCR_VMF_READ},       {"wr", OCR_VMF_WRITE},       {"ex", OCR_VMF_EXEC},
    {"sh", OCR_VMF_SHARED},     {"mr", OCR_VMF_MAYREAD},     {"mw", OCR_VMF_MAYWRITE},
    {"me", OCR_VMF_MAYEXEC},    {"ms", OCR_VMF_MAYSHARE},    {"gd", OCR_VMF_GROWSDOWN},
    {"pf", OCR_VMF_PFNMAP},     {"lo", OCR_VMF_LOCKED},      {"io", OCR_VMF_IO},
    {"sr", OCR_VMF_SEQ_READ},   {"rr", OCR_VMF_RAND_READ},   {"dc", OCR_VMF_DONTCOPY},
    {"de", OCR_VMF_DONTEXPAND}, {"lf", OCR_VMF_LOCKONFAULT}, {"ac", OCR_VMF_ACCOUNT},
    {"nr", OCR_VMF_NORESERVE},  {"ht", OCR_VMF_HUGETLB},     {"sf", OCR_VMF_SYNC},
    {"ar", OCR_VMF_ARCH_1},     {"wf", OCR_VMF_WIPEONFORK},  {"dd", OCR_VMF_DONTDUMP},
    {"sd", OCR_VMF_SOFTDIRTY},  {"mm", OCR_VMF_MIXEDMAP},    {"hg", OCR_VMF_HUGEPAGE},
    {"nh", OCR_VMF_NOHUGEPAGE}, {"mg", OCR_VMF_MERGEABLE},   {"um", OCR_VMF_UFFD_MISSING},
    {"uw", OCR_VMF_UFFD_WP},    {"ui", OCR_VMF_UFFD_MINOR},  {"ss", OCR_VMF_SHADOW_STACK},
    {"dp", OCR_VMF_DROPPABLE},  {"sl", OCR_VMF_SEALED},      {"bt", OCR_VMF_ARM64_BTI},
    {"mt", OCR_VMF_ARM64_MTE},  {"mo", OCR_VMF_MAYOVERLAY},  {"ov", OCR_VMF_MAYOVERLAY},
};

constexpr std::string_view kDeletedSuffix = " (deleted)";

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Cursor over one line. Every reader consumes exactly its field and reports failure
// instead of running past the end of the line.
struct Cursor {
  std::string_view s;
  size_t i = 0;

  bool at_end() const { return i >= s.size(); }
  bool eat(char c) {
    if (at_end() || s[i] != c) return false;
    ++i;
    return true;
  }
  // One or more blanks.
  bool blanks() {
    size_t b = i;
    while (!at_end() && is_blank(s[i])) ++i;
    return i > b;
  }
  bool hex(uint64_t* v) {
    uint64_t x = 0;
    size_t b = i;
    for (; !at_end(); ++i) {
      int d = hex_value(s[i]);
      if (d < 0) break;
      if (i - b >= 16) return false;  // more than 64 bits
      x = (x << 4) | static_cast<uint64_t>(d);
    }
    *v = x;
    return i > b;
  }
  bool dec(uint64_t* v) {
    uint64_t x = 0;
    size_t b = i;
    for (; !at_end() && s[i] >= '0' && s[i] <= '9'; ++i) {
      uint64_t d = static_cast<uint64_t>(s[i] - '0');
      if (x > (UINT64_MAX - d) / 10) return false;
      x = x * 10 + d;
    }
    *v = x;
    return i > b;
  }
};

// True when the line has the shape of a mapping line ("<hex>-<hex> "), as opposed to an
// smaps "Key: value" line. Keys such as "Anonymous:" start with a hex digit, so one
// character is not enough to tell.
bool looks_like_mapping_line(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && hex_value(line[i]) >= 0) ++i;
  return i > 0 && i < line.size() && line[i] == '-';
}

const char* parse_mapping_line(std::string_view line, MapEntry& e) {
  Cursor c{line};
  uint64_t v = 0;
  if (!c.hex(&e.start) || !c.eat('-') || !c.hex(&e.end)) return "proc maps: bad address range";
  if (e.end <= e.start) return "proc maps: address range is empty or reversed";
  if (!c.blanks()) return "proc maps: missing permissions";
  if (c.s.size() - c.i < 4) return "proc maps: bad permissions";
  const char* p = c.s.data() + c.i;
  e.prot = 0;
  if (p[0] == 'r')
    e.prot |= PROT_READ;
  else if (p[0] != '-')
    return "proc maps: bad permissions";
  if (p[1] == 'w')
    e.prot |= PROT_WRITE;
  else if (p[1] != '-')
    return "proc maps: bad permissions";
  if (p[2] == 'x')
    e.prot |= PROT_EXEC;
  else if (p[2] != '-')
    return "proc maps: bad permissions";
  if (p[3] == 's')
    e.shared = true;
  else if (p[3] == 'p')
    e.shared = false;
  else
    return "proc maps: bad permissions";
  c.i += 4;
  if (!c.blanks() || !c.hex(&e.offset)) return "proc maps: bad offset";
  if (!c.blanks() || !c.hex(&v) || v > UINT32_MAX) return "proc maps: bad device";
  e.dev_major = static_cast<uint32_t>(v);
  if (!c.eat(':') || !c.hex(&v) || v > UINT32_MAX) return "proc maps: bad device";
  e.dev_minor = static_cast<uint32_t>(v);
  if (!c.blanks() || !c.dec(&e.inode)) return "proc maps: bad inode";
  // Anonymous mappings end right after the inode (older kernels add one blank).
  std::string_view path;
  if (!c.at_end()) {
    if (!c.blanks()) return "proc maps: bad inode";
    path = c.s.substr(c.i);
  }
  e.deleted = false;
  if (path.size() > kDeletedSuffix.size() && path.ends_with(kDeletedSuffix)) {
    path.remove_suffix(kDeletedSuffix.size());
    e.deleted = true;
  }
  e.path.assign(path.data(), path.size());
  e.vm_flags = 0;
  return nullptr;
}

// "VmFlags: rd wr mr mw me ac " -> bits.
uint64_t parse_vm_flags(std::string_view v) {
  uint64_t bits = 0;
  size_t i = 0;
  while (i < v.size()) {
    while (i < v.size() && is_blank(v[i])) ++i;
    size_t b = i;
    while (i < v.size() && !is_blank(v[i])) ++i;
    if (i > b) bits |= vm_flag_from_mnemonic(v.substr(b, i - b));
  }
  return bits;
}

}  // namespace

uint64_t vm_flag_from_mnemonic(std::string_view code) {
  for (const VmFlagName& n : kVmFlagNames)
    if (code == std::string_view(n.code, 2)) return n.bit;
  return OCR_VMF_UNKNOWN;
}

int parse_proc_maps(std::string_view text, std::pmr::vector<MapEntry>& out, const char** error) {
  const size_t first = out.size();
  std::pmr::memory_resource* mr = out.get_allocator().resource();
  const char* err = nullptr;
  size_t pos = 0;
  while (pos < text.size() && !err) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;

    if (looks_like_mapping_line(line)) {
      out.emplace_back(mr);
      err = parse_mapping_line(line, out.back());
      continue;
    }
    // smaps attribute line: "Key:" followed by the value.
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      err = "proc maps: line is neither a mapping nor a \"Key: value\" attribute";
      break;
    }
    std::string_view key = line.substr(0, colon);
    for (char ch : key) {
      bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                ch == '_';
      if (!ok) {
        err = "proc maps: line is neither a mapping nor a \"Key: value\" attribute";
        break;
      }
    }
    if (err) break;
    if (out.size() == first) {
      err = "proc maps: smaps attribute before the first mapping";
      break;
    }
    if (key == "VmFlags") out.back().vm_flags = parse_vm_flags(line.substr(colon + 1));
  }
  if (err) {
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
    if (error) *error = err;
    return -EINVAL;
  }
  return 0;
}

std::string_view read_whole_file(const char* path, std::pmr::memory_resource* mr, int* err) {
  // Files above this are not /proc text we expect to read; stop before the arena does.
  constexpr size_t kMaxSize = size_t{1} << 30;
  *err = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return {};
  }
  size_t cap = 64 * 1024;
  size_t len = 0;
  char* buf = static_cast<char*>(mr->allocate(cap, 64));
  for (;;) {
    if (len == cap) {
      if (cap >= kMaxSize) {
        *err = EFBIG;
        break;
      }
      char* bigger = static_cast<char*>(mr->allocate(cap * 2, 64));
      memcpy(bigger, buf, len);
      mr->deallocate(buf, cap, 64);
      buf = bigger;
      cap *= 2;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      *err = errno;
      break;
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  close(fd);
  if (*err) {
    mr->deallocate(buf, cap, 64);
    return {};
  }
  return std::string_view(buf, len);
}

}  // namespace ocr
