// Capture of per-process kernel state for the image (see kernel_state.h).
#include "crs/kernel_state.h"

#include <cpuid.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ocr {
namespace {

bool in_list(int fd, const int* list, int n) {
  for (int i = 0; i < n; i++)
    if (list[i] == fd) return true;
  return false;
}

// Reads a small /proc file into buf; returns bytes or -errno.
long read_small(const char* path, char* buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t got = 0;
  while (got < cap) {
    ssize_t r = read(fd, buf + got, cap - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  close(fd);
  return static_cast<long>(got);
}

bool is_anonymous_pipe(const CapturedFd& c) {
  return c.rec.kind == OCR_FD_UNSUPPORTED && c.path.substr(0, 6) == "pipe:[";
}

int access_mode(const CapturedFd& c) {
  return static_cast<int>(c.rec.flags) & O_ACCMODE;
}

// Reads everything buffered in the pipe of read end `rfd` and puts it back through write
// end `wfd`; both opened anew via /proc so the application's own descriptions (and their
// O_NONBLOCK) stay untouched. Returns the bytes (arena memory), or an empty view.
std::string_view drain_and_refill(int rfd, int wfd, std::pmr::memory_resource* mr) {
  char path[40];
  snprintf(path, sizeof path, "/proc/self/fd/%d", rfd);
  int r = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (r < 0) return {};
  snprintf(path, sizeof path, "/proc/self/fd/%d", wfd);
  int w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (w < 0) {
    close(r);
    return {};
  }
  char* buf = static_cast<char*>(mr->allocate(OCR_MAX_PIPE_BYTES, 16));
  size_t got = 0;
  for (;;) {
    ssize_t n = read(r, buf + got, OCR_MAX_PIPE_BYTES - got);
    if (n > 0) {
      got += static_cast<size_t>(n);
      if (got == OCR_MAX_PIPE_BYTES) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // EAGAIN: empty
  }
  for (size_t put = 0; put < got;) {
    ssize_t n = write(w, buf + put, got - put);
    if (n > 0)
      put += static_cast<size_t>(n);
    else if (!(n < 0 && errno == EINTR))
      break;  // cannot happen: it all fit before
  }
  close(r);
  close(w);
  return std::string_view(buf, got);
}

// Turns anonymous pipes with a read and a write end among `out` into OCR_FD_PIPE records.
void capture_internal_pipes(std::pmr::memory_resource* mr, std::pmr::vector<CapturedFd>& out) {
  for (size_t i = 0; i < out.size(); i++) {
    if (!is_anonymous_pipe(out[i])) continue;
    int rfd = -1, wfd = -1;
    for (const CapturedFd& c : out) {
      if (!is_anonymous_pipe(c) || c.rec.ino != out[i].rec.ino) continue;
      if (access_mode(c) == O_RDONLY && rfd < 0) rfd = c.rec.fd;
      if (access_mode(c) == O_WRONLY && wfd < 0) wfd = c.rec.fd;
    }
    if (rfd < 0 || wfd < 0) continue;  // the other end is elsewhere: not restorable
    const long cap = fcntl(rfd, F_GETPIPE_SZ);
    std::string_view data = drain_and_refill(rfd, wfd, mr);
    for (CapturedFd& c : out) {
      if (!is_anonymous_pipe(c) || c.rec.ino != out[i].rec.ino) continue;
      c.rec.kind = OCR_FD_PIPE;
      c.rec.offset = cap > 0 ? cap : 65536;
      c.rec.size = c.rec.fd == rfd ? data.size() : 0;
      if (c.rec.fd == rfd) c.data = data;
    }
  }
}

}  // namespace

int capture_fds(std::pmr::memory_resource* mr, const int* skip, int nskip,
                std::pmr::vector<CapturedFd>& out) {
  int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -errno;
  alignas(8) char buf[4096];
  for (;;) {
    long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      off += d->d_reclen;
      if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
      int fd = static_cast<int>(strtol(d->d_name, nullptr, 10));
      if (fd == dfd || in_list(fd, skip, nskip)) continue;
      CapturedFd c;
      c.rec.fd = fd;
      struct stat st;
      if (fstat(fd, &st) != 0) continue;
      int fl = fcntl(fd, F_GETFL);
      int fdfl = fcntl(fd, F_GETFD);
      c.rec.flags = fl < 0 ? 0 : static_cast<uint32_t>(fl);
      c.rec.fd_flags = fdfl < 0 ? 0 : static_cast<uint32_t>(fdfl);
      c.rec.dev = st.st_dev;
      c.rec.ino = st.st_ino;
      c.rec.offset = -1;
      if (S_ISREG(st.st_mode)) {
        c.rec.kind = OCR_FD_REGULAR;
        c.rec.size = static_cast<uint64_t>(st.st_size);
        c.rec.offset = lseek(fd, 0, SEEK_CUR);
      } else if (S_ISDIR(st.st_mode)) {
        c.rec.kind = OCR_FD_DIRECTORY;
        c.rec.offset = lseek(fd, 0, SEEK_CUR);
      } else if (S_ISCHR(st.st_mode)) {
        c.rec.kind = OCR_FD_CHARDEV;
      } else {
        c.rec.kind = OCR_FD_UNSUPPORTED;  // pipes, sockets, eventfds, ...
      }
      char link[32];
      snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
      char* target = static_cast<char*>(mr->allocate(OCR_MAX_PATH, 1));
      ssize_t len = readlink(link, target, OCR_MAX_PATH);
      if (len < 0) len = 0;
      c.path = std::string_view(target, static_cast<size_t>(len));
      c.rec.path_len = static_cast<uint32_t>(len);
      out.push_back(c);
    }
  }
  close(dfd);
  capture_internal_pipes(mr, out);
  return 0;
}

int capture_sigactions(ocr_sigaction_record* out) {
  memset(out, 0, sizeof *out);
  for (int sig = 1; sig <= 64; sig++) {
    ocr_ksigaction act{};
    // The raw call, to get the kernel's view including sa_restorer.
    if (syscall(SYS_rt_sigaction, sig, nullptr, &act, 8) == 0) out->act[sig - 1] = act;
  }
  return 0;
}

int capture_mm_map(ocr_mm_map* out) {
  memset(out, 0, sizeof *out);
  char buf[2048];
  long n = read_small("/proc/self/stat", buf, sizeof buf - 1);
  if (n <= 0) return n < 0 ? static_cast<int>(n) : -EIO;
  buf[n] = 0;
  // Fields after the command name, which may contain spaces; field 3 follows ") ".
  const char* p = strrchr(buf, ')');
  if (!p) return -EIO;
  p += 2;
  uint64_t field[64] = {};
  int idx = 3;
  while (*p && idx < 64) {
    char* end;
    field[idx] = strtoull(p, &end, 10);
    if (end == p) end++;  // the state letter
    p = end;
    while (*p == ' ') p++;
    idx++;
  }
  if (idx <= 51) return -EIO;
  out->start_code = field[26];
  out->end_code = field[27];
  out->start_stack = field[28];
  out->start_data = field[45];
  out->end_data = field[46];
  out->start_brk = field[47];
  out->arg_start = field[48];
  out->arg_end = field[49];
  out->env_start = field[50];
  out->env_end = field[51];
  out->brk = static_cast<uint64_t>(syscall(SYS_brk, 0));
  long a = read_small("/proc/self/auxv", reinterpret_cast<char*>(out->auxv), sizeof out->auxv);
  if (a < 0) return static_cast<int>(a);
  out->auxv_size = static_cast<uint32_t>(a);
  return 0;
}

uint32_t capture_umask() {
  mode_t m = umask(0);
  umask(m);
  return m;
}

uint32_t capture_personality() {
  return static_cast<uint32_t>(personality(0xffffffff));
}

std::string_view capture_proc_link(const char* name, std::pmr::memory_resource* mr) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/%s", name);
  char* buf = static_cast<char*>(mr->allocate(OCR_MAX_PATH, 1));
  ssize_t n = readlink(path, buf, OCR_MAX_PATH);
  return n > 0 ? std::string_view(buf, static_cast<size_t>(n)) : std::string_view();
}

uint64_t cpu_xfeatures() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return 0;
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t{hi} << 32) | lo;
}

uint32_t cpu_xsave_size() {
  unsigned a, b, c, d;
  if (__get_cpuid_max(0, nullptr) < 0xd) return 0;
  __cpuid_count(0xd, 0, a, b, c, d);
  return b;
}

}  // namespace ocr
