// File identity capture and comparison (see file_identity.h).
#include "crs/file_identity.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "crs/elf_build_id.h"

namespace ocr {

namespace {

std::string hex(const uint8_t* p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; i++) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

std::string mtime_string(int64_t sec, int64_t nsec) {
  char b[64];
  snprintf(b, sizeof b, "%lld.%09lld", static_cast<long long>(sec), static_cast<long long>(nsec));
  return b;
}

std::string dev_ino_string(uint64_t dev, uint64_t ino) {
  char b[80];
  snprintf(b, sizeof b, "%u:%u:%llu", major(dev), minor(dev), static_cast<unsigned long long>(ino));
  return b;
}

void append(std::string* out, const std::string& part) {
  if (!out->empty()) *out += "; ";
  *out += part;
}

}  // namespace

int capture_file_identity(int fd, ocr_file_record* rec) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  rec->dev = st.st_dev;
  rec->ino = st.st_ino;
  rec->size = static_cast<uint64_t>(st.st_size);
  rec->mtime_sec = st.st_mtim.tv_sec;
  rec->mtime_nsec = st.st_mtim.tv_nsec;
  rec->mode = st.st_mode;
  memset(rec->build_id, 0, sizeof rec->build_id);
  rec->build_id_len = 0;
  rec->flags &= ~OCR_FILE_ELF;
  if (!S_ISREG(st.st_mode)) return 0;  // devices etc.: no content to fingerprint
  int n = read_elf_build_id(fd, rec->build_id, sizeof rec->build_id);
  if (n < 0) return n;
  if (n > 0) {
    rec->build_id_len = static_cast<uint32_t>(n);
    rec->flags |= OCR_FILE_ELF;
  }
  return 0;
}

bool same_file_identity(const std::string& path, const ocr_file_record& rec, std::string* why) {
  std::string diff;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (why) *why = strerror(errno);
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    if (why) *why = strerror(e);
    return false;
  }
  if ((st.st_mode & S_IFMT) != (rec.mode & S_IFMT)) append(&diff, "file type changed");
  if (static_cast<uint64_t>(st.st_size) != rec.size)
    append(&diff, "size " + std::to_string(rec.size) + " -> " + std::to_string(st.st_size));
  if (st.st_mtim.tv_sec != rec.mtime_sec || st.st_mtim.tv_nsec != rec.mtime_nsec)
    append(&diff, "mtime " + mtime_string(rec.mtime_sec, rec.mtime_nsec) + " -> " +
                      mtime_string(st.st_mtim.tv_sec, st.st_mtim.tv_nsec));
  if ((rec.flags & OCR_FILE_ELF) && rec.build_id_len > 0) {
    uint8_t id[OCR_MAX_BUILD_ID];
    const size_t want = rec.build_id_len < OCR_MAX_BUILD_ID ? rec.build_id_len : OCR_MAX_BUILD_ID;
    int n = S_ISREG(st.st_mode) ? read_elf_build_id(fd, id, sizeof id) : 0;
    if (n < 0)
      append(&diff, std::string("cannot read build-id: ") + strerror(-n));
    else if (n == 0)
      append(&diff, "build-id " + hex(rec.build_id, want) + " -> none");
    else if (static_cast<size_t>(n) != want || memcmp(id, rec.build_id, want) != 0)
      append(&diff, "build-id " + hex(rec.build_id, want) + " -> " + hex(id, n));
  }
  close(fd);
  const bool moved = st.st_dev != rec.dev || st.st_ino != rec.ino;
  const std::string dev_ino =
      "dev:ino " + dev_ino_string(rec.dev, rec.ino) + " -> " + dev_ino_string(st.st_dev, st.st_ino);
  if (!diff.empty()) {
    if (moved) append(&diff, dev_ino);
    if (why) *why = diff;
    return false;
  }
  if (why) *why = moved ? "same content, different file (" + dev_ino + ")" : std::string();
  return true;
}

}  // namespace ocr
