// Control channel files between ompi-checkpoint and the runtime (see control_channel.h).
// The writing half used by the runtime while the application is frozen is allocation-free:
// fixed buffers, hand-rolled number formatting, *at() system calls on the directory fd.
#include "snapc/control_channel.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "crs/skip_reasons.h"

namespace ocr {

using namespace ctl;

namespace {

constexpr size_t kMaxFileSize = 64 * 1024;  // control files are a few hundred bytes
constexpr uint64_t kMaxPid = 4194304;       // PID_MAX_LIMIT on 64-bit
constexpr int kMaxSignal = 64;
constexpr size_t kMaxMessage = 1024;  // what the runtime writes; readers accept up to 4096
constexpr size_t kNameCap = 96;       // "<pid>.<u64>.result.tmp.<pid>" and friends

// Append-only formatter over a caller-provided buffer; never allocates, remembers overflow.
class Out {
 public:
  Out(char* buf, size_t cap) : buf_(buf), cap_(cap) {
    if (cap_) buf_[0] = 0;
  }
  Out& str(const char* s) {
    while (s && *s) ch(*s++);
    return *this;
  }
  // One line of at most `max` bytes: control characters that would break the key=value
  // framing become spaces.
  Out& line(const char* s, size_t max) {
    for (size_t i = 0; s && s[i] && i < max; i++) {
      char c = s[i];
      ch(c == '\n' || c == '\r' ? ' ' : c);
    }
    return *this;
  }
  Out& u64(uint64_t v) {
    char d[24];
    int n = 0;
    do {
      d[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v);
    while (n) ch(d[--n]);
    return *this;
  }
  Out& ch(char c) {
    if (len_ + 1 < cap_) {
      buf_[len_++] = c;
      buf_[len_] = 0;
    } else {
      overflow_ = true;
    }
    return *this;
  }
  size_t len() const { return len_; }
  bool overflow() const { return overflow_; }

 private:
  char* buf_;
  size_t cap_;
  size_t len_ = 0;
  bool overflow_ = false;
};

// Resolves and checks the directory of `uid`. Creates it when missing; as root for
// another user, hands it to that user.
int control_dir_for(char* buf, size_t cap, unsigned uid) {
  Out o(buf, cap);
  const char* env = getenv("OMPI_CR_CONTROL_DIR");
  if (env && *env) {
    if (env[0] != '/') return -EINVAL;
    o.str(env);
    // "/a/b/" and "/a/b" must name the same files for both sides.
    size_t n = o.len();
    while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
  } else {
    o.str("/tmp/ompi-cr-").u64(uid);
  }
  if (o.overflow() || o.len() + kNameCap >= PATH_MAX) return -ENAMETOOLONG;
  if (mkdir(buf, 0700) == 0) {
    if (uid != geteuid() && chown(buf, uid, static_cast<gid_t>(-1)) != 0) return -errno;
  } else if (errno != EEXIST) {
    return -errno;
  }
  struct stat st;
  if (lstat(buf, &st) != 0) return -errno;
  if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
  if (st.st_uid != uid) return -EPERM;
  if (st.st_mode & (S_IWGRP | S_IWOTH)) return -EACCES;
  return 0;
}

int open_dir(const char* dir) {
  return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

// Writes `name` in dirfd atomically: temporary file, 0600, fsync, then rename (or link
// when `exclusive`, which fails with -EEXIST if the name is taken). Allocation-free.
int write_file_at(int dirfd, const char* name, const char* data, size_t len, bool exclusive,
                  unsigned owner) {
  char tmp[kNameCap + 32];
  Out t(tmp, sizeof tmp);
  t.str(name).str(".tmp.").u64(static_cast<uint64_t>(getpid()));
  if (t.overflow()) return -ENAMETOOLONG;
  int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return -errno;
  int rc = 0;
  if (fchmod(fd, 0600) != 0) rc = -errno;  // a restrictive umask must not matter either way
  if (rc == 0 && owner != geteuid() && fchown(fd, owner, static_cast<gid_t>(-1)) != 0) rc = -errno;
  for (size_t off = 0; rc == 0 && off < len;) {
    ssize_t n = write(fd, data + off, len - off);
    if (n < 0) {
      if (errno != EINTR) rc = -errno;
      continue;
    }
    off += static_cast<size_t>(n);
  }
  if (rc == 0 && fsync(fd) != 0) rc = -errno;
  if (close(fd) != 0 && rc == 0) rc = -errno;
  if (rc == 0) {
    if (exclusive) {
      if (linkat(dirfd, tmp, dirfd, name, 0) != 0) rc = -errno;
      unlinkat(dirfd, tmp, 0);
    } else if (renameat(dirfd, tmp, dirfd, name) != 0) {
      rc = -errno;
    }
  }
  if (rc != 0) unlinkat(dirfd, tmp, 0);
  return rc;
}

// Reads "/proc/<pid>/stat" and returns field `field` (1-based, >= 3) as text in out.
bool proc_stat_field(int pid, int field, char* out, size_t cap) {
  if (pid <= 0) return false;
  char path[48];
  Out p(path, sizeof path);
  p.str("/proc/").u64(static_cast<uint64_t>(pid)).str("/stat");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[2048];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  // comm (field 2) may contain spaces and parentheses: fields resume after the last ')'.
  char* s = strrchr(buf, ')');
  if (!s) return false;
  s++;
  for (int f = 3; f <= field; f++) {
    while (*s == ' ') s++;
    char* e = s;
    while (*e && *e != ' ' && *e != '\n') e++;
    if (e == s) return false;
    if (f == field) {
      size_t len = static_cast<size_t>(e - s);
      if (len + 1 > cap) return false;
      memcpy(out, s, len);
      out[len] = 0;
      return true;
    }
    s = e;
  }
  return false;
}

// --- reading side (tools, and the runtime outside the frozen window) ---

std::string errno_text(int e) {
  return strerror(e);
}

std::string dir_error(const std::string& dir, int rc, unsigned uid) {
  const char* env = getenv("OMPI_CR_CONTROL_DIR");
  switch (-rc) {
    case EINVAL:
      return std::string("OMPI_CR_CONTROL_DIR=") + (env ? env : "") + ": not an absolute path";
    case ENAMETOOLONG:
      return "control directory: path too long";
    case ENOTDIR:
      return "control directory " + dir + ": not a directory";
    case EPERM: {
      struct stat st;
      std::string owner = lstat(dir.c_str(), &st) == 0 ? std::to_string(st.st_uid) : "?";
      return "control directory " + dir + ": owned by uid " + owner + ", not by uid " +
             std::to_string(uid);
    }
    case EACCES: {
      struct stat st;
      char mode[16] = "?";
      if (lstat(dir.c_str(), &st) == 0) snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
      return "control directory " + dir + ": writable by group or others (mode " + mode +
             "); it must be private (chmod 700)";
    }
  }
  return "control directory " + dir + ": " + errno_text(-rc);
}

bool valid_snapshot_dir(const std::string& s) {
  return s.empty() || (s[0] == '/' && s.size() < PATH_MAX);
}

std::string name_with_pid(int pid, const char* suffix) {
  return std::to_string(pid) + suffix;
}

std::string result_name(int pid, uint64_t id) {
  return std::to_string(pid) + "." + std::to_string(id) + ".result";
}

bool parse_request(const KvFile& f, CheckpointRequest* req, std::string* err) {
  uint64_t id = 0;
  if (f.u64("id", 1, UINT64_MAX, &id, err)) req->id = id;  // readable even if the rest is not
  if (!f.version(err)) return false;
  if (id == 0) return false;
  if (!f.str("snapshot_dir", &req->snapshot_dir, err)) return false;
  if (!valid_snapshot_dir(req->snapshot_dir))
    return f.fail(err, "snapshot_dir=" + req->snapshot_dir + ": not an absolute path");
  if (!f.flag("term", &req->term, err) || !f.flag("verbose", &req->verbose, err)) return false;
  if (!f.str("kind", &req->kind, err)) return false;
  if (req->kind != "full" && req->kind != "incremental" && req->kind != "auto")
    return f.fail(err, "kind=" + req->kind + ": not full, incremental or auto");
  return true;
}

}  // namespace

// --- building blocks shared with snapc/job_control.cpp (declared in the header) ---

namespace ctl {

unsigned resolve_uid(int64_t owner_uid) {
  return owner_uid >= 0 ? static_cast<unsigned>(owner_uid) : geteuid();
}

bool resolve_dir(unsigned uid, std::string* dir, std::string* err) {
  char buf[PATH_MAX];
  int rc = control_dir_for(buf, sizeof buf, uid);
  *dir = buf;
  if (rc != 0) {
    if (err) *err = dir_error(*dir, rc, uid);
    return false;
  }
  return true;
}

int write_text(const std::string& dir, const std::string& name, const std::string& text,
               bool exclusive, unsigned owner) {
  int dfd = open_dir(dir.c_str());
  if (dfd < 0) return -errno;
  int rc = write_file_at(dfd, name.c_str(), text.data(), text.size(), exclusive, owner);
  close(dfd);
  return rc;
}

KvFile::KvFile(std::string path) : path_(std::move(path)) {}

// Returns false with *absent = true when the file does not exist.
bool KvFile::load(unsigned owner, bool* absent, std::string* err) {
  *absent = false;
  int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) *absent = true;
    return fail(err, errno_text(errno));
  }
  struct stat st;
  std::string text;
  bool ok = fstat(fd, &st) == 0;
  if (!ok) {
    int e = errno;
    close(fd);
    return fail(err, errno_text(e));
  }
  std::string why;
  if (!S_ISREG(st.st_mode))
    why = "not a regular file";
  else if (st.st_uid != owner)
    why = "owned by uid " + std::to_string(st.st_uid) + ", not by uid " + std::to_string(owner);
  else if (st.st_mode & (S_IWGRP | S_IWOTH))
    why = "writable by group or others";
  else if (static_cast<uint64_t>(st.st_size) > kMaxFileSize)
    why = "too large (" + std::to_string(st.st_size) + " bytes)";
  if (why.empty()) {
    text.resize(static_cast<size_t>(st.st_size));
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = read(fd, text.data() + off, text.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        why = n < 0 ? errno_text(errno) : "file shrank while being read";
        break;
      }
      off += static_cast<size_t>(n);
    }
  }
  close(fd);
  if (!why.empty()) return fail(err, why);
  return parse(text, err);
}

const std::string* KvFile::find(const char* key) const {
  for (const auto& kv : kv_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

bool KvFile::u64(const char* key, uint64_t min, uint64_t max, uint64_t* out,
                 std::string* err) const {
  const std::string* v = find(key);
  if (!v) return missing(key, err);
  uint64_t x = 0;
  bool ok = !v->empty() && v->size() <= 20;
  for (char c : *v) {
    if (!ok) break;
    if (c < '0' || c > '9' || __builtin_mul_overflow(x, 10, &x) ||
        __builtin_add_overflow(x, static_cast<uint64_t>(c - '0'), &x))
      ok = false;
  }
  if (!ok || x < min || x > max)
    return fail(err, std::string(key) + "=" + *v + ": not a number in " + std::to_string(min) +
                         ".." + std::to_string(max));
  *out = x;
  return true;
}

bool KvFile::flag(const char* key, bool* out, std::string* err) const {
  uint64_t v;
  if (!u64(key, 0, 1, &v, err)) return false;
  *out = v != 0;
  return true;
}

bool KvFile::str(const char* key, std::string* out, std::string* err) const {
  const std::string* v = find(key);
  if (!v) return missing(key, err);
  *out = *v;
  return true;
}

bool KvFile::version(std::string* err) const {
  const std::string* v = find("version");
  if (!v) return missing("version", err);
  if (*v != "1") return fail(err, "unsupported version " + *v + " (this build speaks 1)");
  return true;
}

bool KvFile::fail(std::string* err, const std::string& why) const {
  if (err) *err = path_ + ": " + why;
  return false;
}

bool KvFile::missing(const char* key, std::string* err) const {
  return fail(err, std::string("missing key ") + key);
}

bool KvFile::parse(const std::string& text, std::string* err) {
  size_t pos = 0, lineno = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    lineno++;
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos || eq == 0)
      return fail(err, "line " + std::to_string(lineno) + ": not key=value");
    std::string key = line.substr(0, eq);
    for (char c : key)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        return fail(err, "line " + std::to_string(lineno) + ": bad key");
    std::string value = line.substr(eq + 1);
    for (char c : value)
      if (c == '\0' || c == '\r')
        return fail(err, "line " + std::to_string(lineno) + ": control character in value");
    if (find(key.c_str())) return fail(err, "duplicate key " + key);
    kv_.emplace_back(std::move(key), std::move(value));
  }
  return true;
}

}  // namespace ctl

// --- paths ---

std::string agent_info_path(const std::string& dir, int pid) {
  return dir + "/" + name_with_pid(pid, ".agent");
}
std::string request_path(const std::string& dir, int pid) {
  return dir + "/" + name_with_pid(pid, ".request");
}
std::string result_path(const std::string& dir, int pid, uint64_t id) {
  return dir + "/" + result_name(pid, id);
}

int control_dir_nomalloc(char* buf, size_t cap) {
  return control_dir_for(buf, cap, geteuid());
}

bool control_dir(std::string* dir, std::string* error, int64_t owner_uid) {
  return resolve_dir(resolve_uid(owner_uid), dir, error);
}

uint64_t process_start_time(int pid) {
  char f[32];
  if (!proc_stat_field(pid, 22, f, sizeof f)) return 0;
  uint64_t v = 0;
  for (const char* c = f; *c; c++) {
    if (*c < '0' || *c > '9') return 0;
    v = v * 10 + static_cast<uint64_t>(*c - '0');
  }
  return v;
}

char process_state(int pid) {
  char f[8];
  if (!proc_stat_field(pid, 3, f, sizeof f)) return 0;
  return f[0];
}

// --- agent file ---

bool write_agent_info(const AgentInfo& info, std::string* err) {
  std::string dir;
  if (!resolve_dir(geteuid(), &dir, err)) return false;
  // A request left over from an earlier process with this pid must not fire now.
  unlink(request_path(dir, info.pid).c_str());
  std::string text = "version=1\npid=" + std::to_string(info.pid) +
                     "\nstart_time=" + std::to_string(info.start_time) +
                     "\nsignal=" + std::to_string(info.signal) +
                     "\nuid=" + std::to_string(info.uid) + "\n";
  int rc = write_text(dir, name_with_pid(info.pid, ".agent"), text, false, geteuid());
  if (rc != 0) {
    if (err) *err = agent_info_path(dir, info.pid) + ": " + errno_text(-rc);
    return false;
  }
  return true;
}

bool read_agent_info(int pid, AgentInfo* info, std::string* err, int64_t owner_uid) {
  const unsigned uid = resolve_uid(owner_uid);
  std::string dir;
  if (!resolve_dir(uid, &dir, err)) return false;
  KvFile f(agent_info_path(dir, pid));
  bool absent;
  if (!f.load(uid, &absent, err)) return false;
  uint64_t p, st, sig, u;
  if (!f.version(err) || !f.u64("pid", 1, kMaxPid, &p, err) ||
      !f.u64("start_time", 1, UINT64_MAX, &st, err) || !f.u64("signal", 1, kMaxSignal, &sig, err) ||
      !f.u64("uid", 0, UINT32_MAX - 1, &u, err))
    return false;
  if (p != static_cast<uint64_t>(pid))
    return f.fail(err, "describes pid " + std::to_string(p) + ", not " + std::to_string(pid));
  info->pid = static_cast<int>(p);
  info->start_time = st;
  info->signal = static_cast<int>(sig);
  info->uid = static_cast<unsigned>(u);
  return true;
}

void remove_agent_info(int pid) {
  char dir[PATH_MAX];
  if (control_dir_nomalloc(dir, sizeof dir) != 0) return;
  char name[kNameCap];
  Out(name, sizeof name).u64(static_cast<uint64_t>(pid)).str(".agent");
  int dfd = open_dir(dir);
  if (dfd < 0) return;
  unlinkat(dfd, name, 0);
  close(dfd);
}

// --- requests ---

bool write_request(int pid, const CheckpointRequest& req, std::string* err, int64_t owner_uid) {
  const unsigned uid = resolve_uid(owner_uid);
  std::string dir;
  if (!resolve_dir(uid, &dir, err)) return false;
  const std::string path = request_path(dir, pid);
  auto bad = [&](const std::string& why) {
    if (err) *err = path + ": " + why;
    return false;
  };
  if (req.id == 0) return bad("request id must not be 0");
  if (!valid_snapshot_dir(req.snapshot_dir) || req.snapshot_dir.find('\n') != std::string::npos)
    return bad("snapshot directory must be an absolute path: " + req.snapshot_dir);
  if (req.kind != "full" && req.kind != "incremental" && req.kind != "auto")
    return bad("kind must be full, incremental or auto, not " + req.kind);
  std::string text = "version=1\nid=" + std::to_string(req.id) +
                     "\nsnapshot_dir=" + req.snapshot_dir + "\nterm=" + (req.term ? "1" : "0") +
                     "\nverbose=" + (req.verbose ? "1" : "0") + "\nkind=" + req.kind + "\n";
  int rc = write_text(dir, name_with_pid(pid, ".request"), text, true, uid);
  if (rc == -EEXIST)
    return bad("a checkpoint request for process " + std::to_string(pid) +
               " is already pending (remove this file if no ompi-checkpoint is running)");
  if (rc != 0) return bad(errno_text(-rc));
  return true;
}

bool withdraw_request(int pid, uint64_t id, int64_t owner_uid) {
  const unsigned uid = resolve_uid(owner_uid);
  std::string dir;
  if (!resolve_dir(uid, &dir, nullptr)) return false;
  KvFile f(request_path(dir, pid));
  bool absent;
  CheckpointRequest req;
  if (!f.load(uid, &absent, nullptr)) return false;
  parse_request(f, &req, nullptr);
  if (req.id != id) return false;
  return unlink(f.path().c_str()) == 0;
}

bool take_request(int pid, CheckpointRequest* req, std::string* err) {
  *req = CheckpointRequest{};
  std::string dir;
  if (!resolve_dir(geteuid(), &dir, err)) return false;
  // Claim the file by renaming it first: what we then read and delete is exactly what we
  // claimed, even if a tool withdraws or a new request arrives meanwhile.
  const std::string path = request_path(dir, pid);
  const std::string claimed = path + ".taken." + std::to_string(getpid());
  if (rename(path.c_str(), claimed.c_str()) != 0) {
    if (err) *err = path + ": " + errno_text(errno);
    return false;
  }
  KvFile f(claimed);
  bool absent;
  bool ok = f.load(geteuid(), &absent, err) && parse_request(f, req, err);
  unlink(claimed.c_str());
  if (!ok && err) {  // name the file the tool wrote, not our temporary name
    const std::string& c = claimed;
    if (err->compare(0, c.size(), c) == 0) err->replace(0, c.size(), path);
  }
  return ok;
}

// --- results ---

bool read_result(int pid, uint64_t id, CheckpointResult* res, bool* present, std::string* err,
                 int64_t owner_uid) {
  *present = false;
  const unsigned uid = resolve_uid(owner_uid);
  std::string dir;
  if (!resolve_dir(uid, &dir, err)) return false;
  KvFile f(result_path(dir, pid, id));
  bool absent;
  if (!f.load(uid, &absent, err)) return absent;  // absent: not written yet
  *present = true;
  CheckpointResult r;
  std::string status;
  if (!f.version(err) || !f.u64("id", 1, UINT64_MAX, &r.id, err)) return false;
  if (r.id != id) return f.fail(err, "answers request " + std::to_string(r.id));
  if (!f.str("status", &status, err)) return false;
  if (status != "ok" && status != "error")
    return f.fail(err, "status=" + status + ": not ok or error");
  r.ok = status == "ok";
  if (!f.str("image", &r.image, err) || !f.str("message", &r.message, err)) return false;
  if (r.ok && (r.image.empty() || r.image[0] != '/'))
    return f.fail(err, "image=" + r.image + ": not an absolute path");
  if (r.image.size() >= PATH_MAX) return f.fail(err, "image path too long");
  if (r.message.size() > 4096) return f.fail(err, "message too long");
  if (!f.u64("seq", 0, UINT64_MAX, &r.seq, err) ||
      !f.u64("saved_bytes", 0, UINT64_MAX, &r.saved_bytes, err) ||
      !f.u64("micros", 0, UINT64_MAX, &r.micros, err) ||
      !f.u64("threads", 0, OCR_MAX_THREADS, &r.threads, err))
    return false;
  for (unsigned i = 0; i < OCR_SKIP_REASONS; i++) {
    const std::string key = std::string("skipped_") + skip_reason_name(i);
    if (!f.u64(key.c_str(), 0, UINT64_MAX, &r.skipped[i], err)) return false;
  }
  *res = std::move(r);
  return true;
}

void remove_result(int pid, uint64_t id, int64_t owner_uid) {
  std::string dir;
  if (!resolve_dir(resolve_uid(owner_uid), &dir, nullptr)) return;
  unlink(result_path(dir, pid, id).c_str());
}

int write_result_nomalloc(int pid, uint64_t id, bool ok, const char* image, const char* message,
                          uint64_t seq, uint64_t saved_bytes, const uint64_t* skipped,
                          uint64_t micros, uint64_t threads) {
  char dir[PATH_MAX];
  int rc = control_dir_nomalloc(dir, sizeof dir);
  if (rc != 0) return rc;
  char body[PATH_MAX + kMaxMessage + 1024];
  Out o(body, sizeof body);
  o.str("version=1\nid=").u64(id).str("\nstatus=").str(ok ? "ok" : "error");
  o.str("\nimage=").line(image, PATH_MAX - 1).str("\nmessage=").line(message, kMaxMessage);
  o.str("\nseq=").u64(seq).str("\nsaved_bytes=").u64(saved_bytes);
  for (unsigned i = 0; i < OCR_SKIP_REASONS; i++)
    o.str("\nskipped_").str(skip_reason_name(i)).ch('=').u64(skipped ? skipped[i] : 0);
  o.str("\nmicros=").u64(micros).str("\nthreads=").u64(threads).ch('\n');
  if (o.overflow()) return -ENAMETOOLONG;
  char name[kNameCap];
  Out n(name, sizeof name);
  n.u64(static_cast<uint64_t>(pid)).ch('.').u64(id).str(".result");
  int dfd = open_dir(dir);
  if (dfd < 0) return -errno;
  rc = write_file_at(dfd, name, body, o.len(), false, geteuid());
  close(dfd);
  return rc;
}

}  // namespace ocr
