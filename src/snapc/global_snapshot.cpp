// The global snapshot directory and its HDF5 metadata file (see global_snapshot.h and
// docs/snapshot-format.md). HDF5 through its C API; hwloc for the topology record.
// The file is replaced whole on every commit, so readers never see a half-added group, and
// the reader validates everything it returns: a restart trusts these paths and counts.
#include "snapc/global_snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <hwloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <utility>

#include "build_config.h"
#include "crs/skip_reasons.h"

namespace ocr::snapc {

namespace {

constexpr int64_t kMaxPid = 4194304;    // PID_MAX_LIMIT on 64-bit
constexpr int64_t kMaxRanks = 1 << 24;  // bounds what the reader allocates
constexpr size_t kMaxArgs = 65536;
constexpr size_t kMaxEnv = 4096;
constexpr size_t kMaxString = 128 * 1024;  // one argv/environment entry (MAX_ARG_STRLEN)
constexpr size_t kMaxLibrary = 4096;
constexpr size_t kMaxTopology = 64 << 20;
constexpr size_t kMaxSnapshots = 1 << 20;
constexpr double kMaxSeconds = 1e7;  // a duration beyond ~4 months is a damaged field
constexpr double kMaxTime = 1e11;    // unix seconds, year ~5138

// ---------- small helpers ----------

bool fail(std::string* err, const std::string& msg) {
  if (err) *err = msg;
  return false;
}

std::string errno_text(int e) {
  return strerror(e);
}

std::string skip_member(unsigned i) {
  std::string n = std::string("skipped_") + skip_reason_name(i);
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

bool is_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Canonical decimal u64 ("0", "17"; not "017", not 21 digits).
bool parse_seq(const std::string& s, uint64_t* out) {
  if (!is_digits(s) || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : s)
    if (__builtin_mul_overflow(v, 10, &v) ||
        __builtin_add_overflow(v, static_cast<uint64_t>(c - '0'), &v))
      return false;
  *out = v;
  return true;
}

bool printable(const std::string& s, bool allow_space) {
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return (c > ' ' && c < 0x7f) || (allow_space && c == ' '); });
}

// Host names become HDF5 link names (/topology/<host>): no '/', not "." or "..".
bool valid_host(const std::string& h) {
  return !h.empty() && h.size() < 64 && printable(h, false) && h.find('/') == std::string::npos &&
         h != "." && h != "..";
}

bool finite_in(double v, double lo, double hi) {
  return std::isfinite(v) && v >= lo && v <= hi;
}

// A fixed char array holding a NUL-terminated string.
bool fixed_string(const char* p, size_t cap, std::string* out) {
  const void* nul = memchr(p, 0, cap);
  if (!nul) return false;
  out->assign(p, static_cast<const char*>(nul));
  return true;
}

// The directory rules: a real directory of ours that nobody else can write into.
bool check_dir(const std::string& path, std::string* err) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return fail(err, path + ": " + errno_text(errno));
  if (S_ISLNK(st.st_mode)) return fail(err, path + ": is a symbolic link");
  if (!S_ISDIR(st.st_mode)) return fail(err, path + ": not a directory");
  if (st.st_uid != geteuid())
    return fail(err, path + ": owned by uid " + std::to_string(st.st_uid) + ", not by uid " +
                         std::to_string(geteuid()));
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return fail(err, path + ": writable by group or others (it must be private, chmod 700)");
  return true;
}

// mkdir that accepts an existing directory (other ranks race for the same one) after
// checking it.
bool make_dir(const std::string& path, std::string* err) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
    return fail(err, path + ": cannot create: " + errno_text(errno));
  return check_dir(path, err);
}

// mkdir -p: parents are created 0700 when missing but otherwise taken as they are (the
// user's $HOME and the like); the last component must pass check_dir.
bool make_dirs(const std::string& path, std::string* err) {
  if (path.empty() || path[0] != '/') return fail(err, path + ": not an absolute path");
  if (path.size() >= PATH_MAX) return fail(err, path + ": path too long");
  for (size_t pos = 1; pos < path.size(); pos++) {
    if (path[pos] != '/') continue;
    const std::string parent = path.substr(0, pos);
    if (mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST)
      return fail(err, parent + ": cannot create: " + errno_text(errno));
  }
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return make_dir(p, err);
}

bool fsync_path(const std::string& path, int flags, std::string* err) {
  int fd = open(path.c_str(), flags | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(err, path + ": " + errno_text(errno));
  bool ok = fsync(fd) == 0;
  int e = errno;
  close(fd);
  return ok || fail(err, path + ": fsync: " + errno_text(e));
}

bool copy_file(const std::string& from, const std::string& to, std::string* err) {
  int in = open(from.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) return fail(err, from + ": " + errno_text(errno));
  int out = open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) {
    int e = errno;
    close(in);
    return fail(err, to + ": " + errno_text(e));
  }
  char buf[1 << 16];
  std::string why;
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      why = from + ": " + errno_text(errno);
      break;
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out, buf + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        why = to + ": " + errno_text(errno);
        break;
      }
      off += w;
    }
    if (!why.empty()) break;
  }
  close(in);
  if (close(out) != 0 && why.empty()) why = to + ": " + errno_text(errno);
  return why.empty() || fail(err, why);
}

std::string topology_xml() {
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) != 0) return "";
  std::string xml;
  char* buf = nullptr;
  int len = 0;
  if (hwloc_topology_load(topo) == 0 && hwloc_topology_export_xmlbuffer(topo, &buf, &len, 0) == 0 &&
      buf) {
    xml = buf;
    hwloc_free_xmlbuffer(topo, buf);
  }
  hwloc_topology_destroy(topo);
  return xml;
}

std::string this_host() {
  char h[256] = {};
  if (gethostname(h, sizeof h - 1) != 0) return "localhost";
  return h;
}

// ---------- HDF5 plumbing ----------

// HDF5 prints its error stack to stderr by default; we turn errors into one line instead.
class QuietHdf5 {
 public:
  QuietHdf5() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

herr_t collect_error(unsigned, const H5E_error2_t* e, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (e->desc && *e->desc) *out = e->desc;  // walking downward: the last is the innermost
  return 0;
}

// The most specific description on HDF5's error stack, e.g. "truncated file: eof = ...".
std::string h5_reason() {
  std::string why;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &why);
  H5Eclear2(H5E_DEFAULT);
  return why.empty() ? "HDF5 error" : why;
}

// Owns an hid_t.
class Hid {
 public:
  Hid() = default;
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  Hid(Hid&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Hid& operator=(Hid&& o) noexcept {
    reset();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = -1;
    return *this;
  }
  ~Hid() { reset(); }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }
  operator hid_t() const { return id_; }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

Hid type_id(hid_t id) {
  return Hid(id, H5Tclose);
}
Hid space_id(hid_t id) {
  return Hid(id, H5Sclose);
}

Hid vlen_string_type() {
  Hid t = type_id(H5Tcopy(H5T_C_S1));
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

Hid fixed_string_type(size_t n) {
  Hid t = type_id(H5Tcopy(H5T_C_S1));
  H5Tset_size(t, n);
  H5Tset_strpad(t, H5T_STR_NULLTERM);
  return t;
}

// The per-rank row: member name, offset in RankRecord, kind, size.
struct Member {
  std::string name;
  size_t offset;
  H5T_class_t cls;
  size_t size;
  bool is_signed;
};

std::vector<Member> rank_members() {
  std::vector<Member> m = {
      {"rank", offsetof(RankRecord, rank), H5T_INTEGER, 4, true},
      {"pid", offsetof(RankRecord, pid), H5T_INTEGER, 4, true},
      {"host", offsetof(RankRecord, host), H5T_STRING, sizeof(RankRecord::host), false},
      {"image_path", offsetof(RankRecord, image_path), H5T_STRING, sizeof(RankRecord::image_path),
       false},
      {"kind", offsetof(RankRecord, kind), H5T_STRING, sizeof(RankRecord::kind), false},
      {"bytes_written", offsetof(RankRecord, bytes_written), H5T_INTEGER, 8, false},
      {"pages_saved", offsetof(RankRecord, pages_saved), H5T_INTEGER, 8, false},
  };
  for (unsigned i = 0; i < OCR_SKIP_REASONS; i++)
    m.push_back({skip_member(i), offsetof(RankRecord, pages_skipped) + i * sizeof(uint64_t),
                 H5T_INTEGER, 8, false});
  m.push_back({"image_hash", offsetof(RankRecord, image_hash), H5T_INTEGER, 8, false});
  m.push_back({"write_seconds", offsetof(RankRecord, write_seconds), H5T_FLOAT, 8, false});
  m.push_back({"drained_messages", offsetof(RankRecord, drained_messages), H5T_INTEGER, 8, false});
  m.push_back({"drained_bytes", offsetof(RankRecord, drained_bytes), H5T_INTEGER, 8, false});
  return m;
}

// In memory: RankRecord itself. In the file: the same members packed, little-endian.
Hid rank_type(bool file) {
  const std::vector<Member> members = rank_members();
  size_t total = 0;
  for (const Member& m : members) total += m.size;
  Hid t = type_id(H5Tcreate(H5T_COMPOUND, file ? total : sizeof(RankRecord)));
  size_t off = 0;
  for (const Member& m : members) {
    Hid st;
    hid_t base;
    if (m.cls == H5T_STRING) {
      st = fixed_string_type(m.size);
      base = st;
    } else if (m.cls == H5T_FLOAT) {
      base = file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE;
    } else if (m.size == 4) {
      base = file ? H5T_STD_I32LE : H5T_NATIVE_INT32;
    } else {
      base = file ? H5T_STD_U64LE : H5T_NATIVE_UINT64;
    }
    H5Tinsert(t, m.name.c_str(), file ? off : m.offset, base);
    off += m.size;
  }
  return t;
}

// ---------- writing ----------

class Writer {
 public:
  explicit Writer(std::string* err) : err_(err) {}

  bool attr_i64(hid_t obj, const char* name, int64_t v) {
    return attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
  }
  bool attr_i32(hid_t obj, const char* name, int32_t v) {
    return attr(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, &v);
  }
  bool attr_u64(hid_t obj, const char* name, uint64_t v) {
    return attr(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
  }
  bool attr_u8(hid_t obj, const char* name, uint8_t v) {
    return attr(obj, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, &v);
  }
  bool attr_f64(hid_t obj, const char* name, double v) {
    return attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
  }
  bool attr_str(hid_t obj, const char* name, const std::string& v) {
    Hid t = vlen_string_type();
    const char* p = v.c_str();
    return attr(obj, name, t, t, &p);
  }

  bool string_list(hid_t loc, const char* name, const std::vector<std::string>& v) {
    Hid t = vlen_string_type();
    hsize_t n = v.size();
    Hid space = space_id(H5Screate_simple(1, &n, nullptr));
    std::vector<const char*> ptrs;
    for (const std::string& s : v) ptrs.push_back(s.c_str());
    Hid ds(H5Dcreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
    if (!ds.ok() || (n && H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0))
      return h5fail(std::string("dataset ") + name);
    return true;
  }

  bool string_scalar(hid_t loc, const char* name, const std::string& v) {
    Hid t = vlen_string_type();
    Hid space = space_id(H5Screate(H5S_SCALAR));
    const char* p = v.c_str();
    Hid ds(H5Dcreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
    if (!ds.ok() || H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p) < 0)
      return h5fail(std::string("dataset ") + name);
    return true;
  }

  bool ranks(hid_t loc, const std::vector<RankRecord>& rows) {
    Hid mem = rank_type(false), file = rank_type(true);
    hsize_t n = rows.size();
    Hid space = space_id(H5Screate_simple(1, &n, nullptr));
    Hid ds(H5Dcreate2(loc, "ranks", file, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
    if (!ds.ok() || H5Dwrite(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()) < 0)
      return h5fail("dataset ranks");
    return true;
  }

  Hid group(hid_t loc, const std::string& name) {
    Hid g(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!g.ok()) h5fail("group " + name);
    return g;
  }

  bool h5fail(const std::string& what) { return fail(err_, what + ": " + h5_reason()); }

 private:
  bool attr(hid_t obj, const char* name, hid_t file_type, hid_t mem_type, const void* v) {
    Hid space = space_id(H5Screate(H5S_SCALAR));
    Hid a(H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!a.ok() || H5Awrite(a, mem_type, v) < 0) return h5fail(std::string("attribute ") + name);
    return true;
  }

  std::string* err_;
};

// ---------- validation (shared by commit and the reader) ----------

bool valid_env_entry(const std::string& e) {
  size_t eq = e.find('=');
  if (eq == std::string::npos || eq == 0 || e.size() > kMaxString) return false;
  if (e.compare(0, 8, "OMPI_CR_") != 0 && e.compare(0, 9, "OMPI_MCA_") != 0) return false;
  return std::all_of(e.begin(), e.begin() + static_cast<std::ptrdiff_t>(eq), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool validate_job(const JobInfo& j, std::string* why) {
  if (j.mpirun_pid < 1 || j.mpirun_pid > kMaxPid)
    return fail(why, "mpirun_pid " + std::to_string(j.mpirun_pid) + " out of range");
  if (j.nprocs < 1 || j.nprocs > kMaxRanks)
    return fail(why, "nprocs " + std::to_string(j.nprocs) + " out of range");
  if (j.argv.empty() || j.argv.size() > kMaxArgs)
    return fail(why, "argv has " + std::to_string(j.argv.size()) + " entries");
  for (const std::string& a : j.argv)
    if (a.size() > kMaxString) return fail(why, "an argv entry is too long");
  if (j.cwd.empty() || j.cwd[0] != '/' || j.cwd.size() >= PATH_MAX)
    return fail(why, "cwd '" + j.cwd + "' is not an absolute path");
  if (j.environment.size() > kMaxEnv)
    return fail(why, "environment has " + std::to_string(j.environment.size()) + " entries");
  for (const std::string& e : j.environment)
    if (!valid_env_entry(e))
      return fail(why, "environment entry '" + e.substr(0, 64) +
                           "' is not OMPI_CR_*=... or OMPI_MCA_*=...");
  if (j.mpi_library.size() > kMaxLibrary) return fail(why, "mpi_library is too long");
  if (j.hosts.empty() || j.hosts.size() > static_cast<size_t>(j.nprocs))
    return fail(why, "hosts has " + std::to_string(j.hosts.size()) + " entries for " +
                         std::to_string(j.nprocs) + " ranks");
  for (const std::string& h : j.hosts)
    if (!valid_host(h)) return fail(why, "host name '" + h.substr(0, 64) + "' is not valid");
  return true;
}

bool validate_rank(const RankRecord& r, size_t index, const SnapshotInfo& s, std::string* why) {
  const std::string at = "rank row " + std::to_string(index) + ": ";
  std::string host, path, kind;
  if (r.rank != static_cast<int64_t>(index))
    return fail(why, at + "holds rank " + std::to_string(r.rank) + " (rows must be in rank order)");
  if (r.pid < 1 || r.pid > kMaxPid)
    return fail(why, at + "pid " + std::to_string(r.pid) + " out of range");
  if (!fixed_string(r.host, sizeof r.host, &host) || !valid_host(host))
    return fail(why, at + "host is not a valid host name");
  if (!fixed_string(r.image_path, sizeof r.image_path, &path) || path.empty() || path[0] == '/' ||
      !printable(path, false))
    return fail(why, at + "image_path is not a relative path");
  const std::string prefix = std::to_string(s.seq) + "/";
  if (path.compare(0, prefix.size(), prefix) != 0)
    return fail(why, at + "image_path '" + path + "' is not inside " + prefix);
  for (size_t pos = 0; pos <= path.size();) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    const std::string comp = path.substr(pos, end - pos);
    if (comp.empty() || comp == "." || comp == "..")
      return fail(why, at + "image_path '" + path + "' has an empty, '.' or '..' component");
    pos = end + 1;
  }
  if (!fixed_string(r.kind, sizeof r.kind, &kind) || (kind != "full" && kind != "incremental"))
    return fail(why, at + "kind is not full or incremental");
  if (kind == "incremental" && s.kind == "full")
    return fail(why, at + "incremental image in a full snapshot");
  if (!finite_in(r.write_seconds, 0, kMaxSeconds))
    return fail(why, at + "write_seconds out of range");
  return true;
}

bool validate_snapshot(const SnapshotInfo& s, int32_t nprocs, std::string* why) {
  const std::string at = "snapshot " + std::to_string(s.seq) + ": ";
  if (s.kind != "full" && s.kind != "incremental")
    return fail(why, at + "kind '" + s.kind + "' is not full or incremental");
  if (s.kind == "full" && s.parent_seq != -1)
    return fail(why, at + "a full snapshot has no parent (parent_seq " +
                         std::to_string(s.parent_seq) + ")");
  if (s.kind == "incremental" && (s.parent_seq < 0 || static_cast<uint64_t>(s.parent_seq) >= s.seq))
    return fail(why,
                at + "parent_seq " + std::to_string(s.parent_seq) + " is not an earlier snapshot");
  if (!finite_in(s.started, 0, kMaxTime) || !finite_in(s.committed, 0, kMaxTime))
    return fail(why, at + "started/committed time out of range");
  if (!finite_in(s.coordination_seconds, 0, kMaxSeconds) ||
      !finite_in(s.write_seconds, 0, kMaxSeconds) || !finite_in(s.total_seconds, 0, kMaxSeconds))
    return fail(why, at + "a duration is out of range");
  if (s.ranks.size() != static_cast<size_t>(nprocs))
    return fail(why, at + std::to_string(s.ranks.size()) + " rank rows for " +
                         std::to_string(nprocs) + " ranks");
  for (size_t i = 0; i < s.ranks.size(); i++)
    if (!validate_rank(s.ranks[i], i, s, why)) {
      *why = at + *why;
      return false;
    }
  return true;
}

// ---------- reading ----------

class Reader {
 public:
  explicit Reader(std::string where) : where_(std::move(where)) {}
  const std::string& error() const { return error_; }

  bool bad(const std::string& what) {
    if (error_.empty()) error_ = where_ + ": " + what;
    return false;
  }
  bool h5bad(const std::string& what) { return bad(what + ": " + h5_reason()); }

  Hid open_attr(hid_t obj, const std::string& obj_name, const char* name, H5T_class_t cls) {
    htri_t e = H5Aexists(obj, name);
    if (e <= 0) {
      bad(obj_name + ": no attribute " + name);
      return Hid();
    }
    Hid a(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
    if (!a.ok()) {
      h5bad(obj_name + ": attribute " + name);
      return Hid();
    }
    Hid space = space_id(H5Aget_space(a));
    Hid t = type_id(H5Aget_type(a));
    if (H5Sget_simple_extent_type(space) != H5S_SCALAR || H5Tget_class(t) != cls) {
      bad(obj_name + ": attribute " + name + " has an unexpected type or shape");
      return Hid();
    }
    return a;
  }

  bool i64(hid_t obj, const std::string& on, const char* name, int64_t lo, int64_t hi,
           int64_t* out) {
    Hid a = open_attr(obj, on, name, H5T_INTEGER);
    if (!a.ok()) return false;
    int64_t v = 0;
    if (H5Aread(a, H5T_NATIVE_INT64, &v) < 0) return h5bad(on + ": attribute " + name);
    if (v < lo || v > hi)
      return bad(on + ": " + name + " = " + std::to_string(v) + " is out of range");
    *out = v;
    return true;
  }

  bool u64(hid_t obj, const std::string& on, const char* name, uint64_t* out) {
    Hid a = open_attr(obj, on, name, H5T_INTEGER);
    if (!a.ok()) return false;
    Hid t = type_id(H5Aget_type(a));
    // A signed value would be clamped, not refused, by HDF5's conversion.
    if (H5Tget_sign(t) != H5T_SGN_NONE) return bad(on + ": attribute " + name + " is signed");
    if (H5Aread(a, H5T_NATIVE_UINT64, out) < 0) return h5bad(on + ": attribute " + name);
    return true;
  }

  bool f64(hid_t obj, const std::string& on, const char* name, double lo, double hi, double* out) {
    Hid a = open_attr(obj, on, name, H5T_FLOAT);
    if (!a.ok()) return false;
    double v = 0;
    if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) return h5bad(on + ": attribute " + name);
    if (!finite_in(v, lo, hi)) return bad(on + ": " + name + " is out of range");
    *out = v;
    return true;
  }

  bool str(hid_t obj, const std::string& on, const char* name, size_t max, std::string* out) {
    Hid a = open_attr(obj, on, name, H5T_STRING);
    if (!a.ok()) return false;
    Hid ft = type_id(H5Aget_type(a));
    if (H5Tis_variable_str(ft) <= 0)
      return bad(on + ": attribute " + name + " is not a variable-length string");
    Hid t = vlen_string_type();
    char* p = nullptr;
    if (H5Aread(a, t, &p) < 0) return h5bad(on + ": attribute " + name);
    bool ok = p != nullptr && strlen(p) <= max;
    if (ok) out->assign(p);
    if (p) H5free_memory(p);
    return ok || bad(on + ": attribute " + name + " is missing or too long");
  }

  // A 1-D dataset of variable-length strings.
  bool strings(hid_t loc, const std::string& name, size_t max_count,
               std::vector<std::string>* out) {
    Hid ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) return h5bad("dataset " + name);
    Hid ft = type_id(H5Dget_type(ds));
    Hid space = space_id(H5Dget_space(ds));
    hsize_t n = 0;
    if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) <= 0 ||
        H5Sget_simple_extent_ndims(space) != 1 ||
        H5Sget_simple_extent_dims(space, &n, nullptr) != 1)
      return bad("dataset " + name + " is not a list of variable-length strings");
    if (n > max_count) return bad("dataset " + name + " has too many entries");
    std::vector<char*> ptrs(n, nullptr);
    Hid t = vlen_string_type();
    if (n && H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
      return h5bad("dataset " + name);
    bool ok = true;
    out->clear();
    for (char* p : ptrs) {
      if (!p || strlen(p) > kMaxString) {
        ok = false;
        break;
      }
      out->emplace_back(p);
    }
    if (n)
      H5Dvlen_reclaim(t, space, H5P_DEFAULT, ptrs.data());  // H5Treclaim is not exported by 1.10
    return ok || bad("dataset " + name + " has a missing or too long entry");
  }

  bool string_scalar(hid_t loc, const std::string& name, size_t max, std::string* out) {
    Hid ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) return h5bad("dataset " + name);
    Hid ft = type_id(H5Dget_type(ds));
    Hid space = space_id(H5Dget_space(ds));
    if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) <= 0 ||
        H5Sget_simple_extent_type(space) != H5S_SCALAR)
      return bad("dataset " + name + " is not a variable-length string");
    Hid t = vlen_string_type();
    char* p = nullptr;
    if (H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p) < 0) return h5bad("dataset " + name);
    bool ok = p != nullptr && strlen(p) <= max;
    if (ok) out->assign(p);
    if (p) H5free_memory(p);
    return ok || bad("dataset " + name + " is missing or too long");
  }

  bool ranks(hid_t loc, const std::string& name, size_t expect, std::vector<RankRecord>* out) {
    Hid ds(H5Dopen2(loc, "ranks", H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) return h5bad(name);
    Hid ft = type_id(H5Dget_type(ds));
    Hid space = space_id(H5Dget_space(ds));
    hsize_t n = 0;
    if (H5Tget_class(ft) != H5T_COMPOUND || H5Sget_simple_extent_ndims(space) != 1 ||
        H5Sget_simple_extent_dims(space, &n, nullptr) != 1)
      return bad(name + " is not a 1-D compound dataset");
    const std::vector<Member> members = rank_members();
    if (H5Tget_nmembers(ft) != static_cast<int>(members.size()))
      return bad(name + " has " + std::to_string(H5Tget_nmembers(ft)) + " members, expected " +
                 std::to_string(members.size()));
    for (const Member& m : members) {
      int idx = H5Tget_member_index(ft, m.name.c_str());
      if (idx < 0) return bad(name + " has no member " + m.name);
      Hid mt = type_id(H5Tget_member_type(ft, static_cast<unsigned>(idx)));
      bool ok = H5Tget_class(mt) == m.cls && H5Tget_size(mt) == m.size;
      if (ok && m.cls == H5T_INTEGER) ok = (H5Tget_sign(mt) == H5T_SGN_2) == m.is_signed;
      if (ok && m.cls == H5T_STRING) ok = H5Tis_variable_str(mt) == 0;
      if (!ok) return bad(name + ": member " + m.name + " has an unexpected type");
    }
    if (n != expect)
      return bad(name + " has " + std::to_string(n) + " rows for " + std::to_string(expect) +
                 " ranks");
    out->assign(n, RankRecord{});
    Hid mem = rank_type(false);
    if (n && H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->data()) < 0) return h5bad(name);
    return true;
  }

 private:
  std::string where_, error_;
};

bool read_job(hid_t file, Reader& r, JobInfo* job) {
  int64_t version = 0, pid = 0, nprocs = 0;
  if (H5Aexists(file, "format_version") <= 0)
    return r.bad("not an ompi-cr global snapshot metadata file (no format_version attribute)");
  if (!r.i64(file, "/", "format_version", INT32_MIN, INT32_MAX, &version)) return false;
  if (version != kGlobalSnapshotFormatVersion)
    return r.bad("format version " + std::to_string(version) + " (this build reads " +
                 std::to_string(kGlobalSnapshotFormatVersion) + ")");
  std::string producer;
  if (!r.str(file, "/", "producer", 256, &producer)) return false;
  if (producer.compare(0, 8, "ompi-cr ") != 0)
    return r.bad("producer '" + producer + "' is not ompi-cr");
  if (!r.i64(file, "/", "mpirun_pid", 1, kMaxPid, &pid) ||
      !r.i64(file, "/", "nprocs", 1, kMaxRanks, &nprocs) ||
      !r.str(file, "/", "cwd", PATH_MAX, &job->cwd) ||
      !r.str(file, "/", "mpi_library", kMaxLibrary, &job->mpi_library))
    return false;
  job->mpirun_pid = pid;
  job->nprocs = static_cast<int32_t>(nprocs);
  if (!r.strings(file, "/job/argv", kMaxArgs, &job->argv) ||
      !r.strings(file, "/job/environment", kMaxEnv, &job->environment) ||
      !r.strings(file, "/job/hosts", static_cast<size_t>(nprocs), &job->hosts))
    return false;
  std::string why;
  if (!validate_job(*job, &why)) return r.bad(why);
  return true;
}

// Child link names of a group, or false.
bool child_names(hid_t g, const std::string& gname, Reader& r, size_t max,
                 std::vector<std::string>* out) {
  H5G_info_t info;
  if (H5Gget_info(g, &info) < 0) return r.h5bad(gname);
  if (info.nlinks > max) return r.bad(gname + " has too many members");
  for (hsize_t i = 0; i < info.nlinks; i++) {
    ssize_t len =
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0 || len > 4096) return r.h5bad(gname + ": member name");
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                       H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));
    out->push_back(std::move(name));
  }
  return true;
}

bool read_topology(hid_t file, Reader& r) {
  if (H5Lexists(file, "topology", H5P_DEFAULT) <= 0) return r.bad("no /topology group");
  Hid g(H5Gopen2(file, "topology", H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return r.h5bad("/topology");
  std::vector<std::string> hosts;
  if (!child_names(g, "/topology", r, 1 << 16, &hosts)) return false;
  for (const std::string& h : hosts) {
    std::string xml;
    if (!valid_host(h)) return r.bad("/topology/" + h + ": not a host name");
    if (!r.string_scalar(g, h, kMaxTopology, &xml)) return false;
    if (xml.compare(0, 5, "<?xml") != 0) return r.bad("/topology/" + h + " is not XML");
  }
  return true;
}

bool read_snapshot(hid_t snaps, uint64_t seq, const std::string& name, int32_t nprocs, Reader& r,
                   SnapshotInfo* s, bool* complete) {
  const std::string on = "/snapshots/" + name;
  Hid g(H5Gopen2(snaps, name.c_str(), H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return r.h5bad(on);
  std::string state;
  if (!r.str(g, on, "state", 64, &state)) return false;
  if (!printable(state, false)) return r.bad(on + ": state is not printable");
  *complete = state == "complete";
  if (!*complete) return true;  // an unfinished group from a later version: not counted
  uint64_t stored_seq = 0;
  int64_t parent = 0, term = 0;
  if (!r.u64(g, on, "seq", &stored_seq)) return false;
  if (stored_seq != seq) return r.bad(on + ": seq attribute is " + std::to_string(stored_seq));
  s->seq = seq;
  if (!r.str(g, on, "kind", 16, &s->kind) || !r.i64(g, on, "parent_seq", -1, INT64_MAX, &parent) ||
      !r.f64(g, on, "started", 0, kMaxTime, &s->started) ||
      !r.f64(g, on, "committed", 0, kMaxTime, &s->committed) ||
      !r.f64(g, on, "coordination_seconds", 0, kMaxSeconds, &s->coordination_seconds) ||
      !r.f64(g, on, "write_seconds", 0, kMaxSeconds, &s->write_seconds) ||
      !r.f64(g, on, "total_seconds", 0, kMaxSeconds, &s->total_seconds) ||
      !r.i64(g, on, "term", 0, 1, &term))
    return false;
  s->parent_seq = parent;
  s->term = term != 0;
  s->complete = true;
  if (!r.ranks(g, on + "/ranks", static_cast<size_t>(nprocs), &s->ranks)) return false;
  std::string why;
  if (!validate_snapshot(*s, nprocs, &why)) return r.bad(why);
  return true;
}

// Opens the metadata file after the ownership checks, through the checked descriptor so
// the file HDF5 reads is the one we looked at.
bool read_meta(const std::string& gdir, GlobalSnapshot* out, std::string* err) {
  const std::string path = gdir + "/" + kMetaFileName;
  Reader r(path);
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ELOOP) return fail(err, path + ": is a symbolic link");
    return fail(err, path + ": " + errno_text(errno));
  }
  struct stat st;
  std::string why;
  if (fstat(fd, &st) != 0)
    why = errno_text(errno);
  else if (!S_ISREG(st.st_mode))
    why = "not a regular file";
  else if (st.st_uid != geteuid())
    why = "owned by uid " + std::to_string(st.st_uid) + ", not by uid " + std::to_string(geteuid());
  else if (st.st_mode & (S_IWGRP | S_IWOTH))
    why = "writable by group or others";
  if (!why.empty()) {
    close(fd);
    return fail(err, path + ": " + why);
  }
  const std::string via = "/proc/self/fd/" + std::to_string(fd);
  QuietHdf5 quiet;
  bool ok = false;
  {
    htri_t is = H5Fis_hdf5(via.c_str());
    if (is <= 0) {
      H5Eclear2(H5E_DEFAULT);
      close(fd);
      return fail(err, path + ": not an HDF5 file (" + std::to_string(st.st_size) + " bytes)");
    }
    Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    Hid file(H5Fopen(via.c_str(), H5F_ACC_RDONLY, fapl), H5Fclose);
    if (!file.ok()) {
      r.h5bad("unreadable HDF5 file");
    } else if (read_job(file, r, &out->job) && read_topology(file, r)) {
      std::vector<std::string> names;
      Hid snaps;
      if (H5Lexists(file, "snapshots", H5P_DEFAULT) <= 0) {
        r.bad("no /snapshots group");
      } else if ((snaps = Hid(H5Gopen2(file, "snapshots", H5P_DEFAULT), H5Gclose)).ok() ||
                 r.h5bad("/snapshots")) {
        ok = child_names(snaps, "/snapshots", r, kMaxSnapshots, &names);
        std::vector<std::pair<uint64_t, std::string>> seqs;
        for (const std::string& n : names) {
          uint64_t seq = 0;
          if (!parse_seq(n, &seq)) {
            ok = r.bad("/snapshots/" + n + ": not a sequence number");
            break;
          }
          seqs.emplace_back(seq, n);
        }
        std::sort(seqs.begin(), seqs.end());
        for (size_t i = 0; ok && i < seqs.size(); i++) {
          SnapshotInfo s;
          bool complete = false;
          ok = read_snapshot(snaps, seqs[i].first, seqs[i].second, out->job.nprocs, r, &s,
                             &complete);
          if (ok && complete) out->snapshots.push_back(std::move(s));
        }
        // An incremental snapshot is only usable with its parent.
        for (size_t i = 0; ok && i < out->snapshots.size(); i++) {
          const SnapshotInfo& s = out->snapshots[i];
          if (s.kind != "incremental") continue;
          bool found = false;
          for (size_t k = 0; k < i; k++)
            found = found || out->snapshots[k].seq == static_cast<uint64_t>(s.parent_seq);
          if (!found)
            ok = r.bad("snapshot " + std::to_string(s.seq) + ": parent " +
                       std::to_string(s.parent_seq) + " is not a complete snapshot");
        }
      }
    }
  }
  close(fd);
  if (!ok) return fail(err, r.error());
  return true;
}

// Creates the job part of a new metadata file.
bool write_job(hid_t file, const JobInfo& job, std::string* err) {
  Writer w(err);
  if (!w.attr_i32(file, "format_version", kGlobalSnapshotFormatVersion) ||
      !w.attr_str(file, "producer", std::string("ompi-cr ") + OMPI_CR_VERSION) ||
      !w.attr_i64(file, "mpirun_pid", job.mpirun_pid) || !w.attr_i32(file, "nprocs", job.nprocs) ||
      !w.attr_str(file, "cwd", job.cwd) || !w.attr_str(file, "mpi_library", job.mpi_library))
    return false;
  Hid jg = w.group(file, "job");
  if (!jg.ok() || !w.string_list(jg, "argv", job.argv) ||
      !w.string_list(jg, "environment", job.environment) || !w.string_list(jg, "hosts", job.hosts))
    return false;
  Hid tg = w.group(file, "topology");
  if (!tg.ok()) return false;
  // The topology helps place a restart; a machine where hwloc cannot load it still gets
  // its checkpoint.
  const std::string xml = topology_xml();
  const std::string host = this_host();
  if (!xml.empty() && valid_host(host) && !w.string_scalar(tg, host.c_str(), xml)) return false;
  Hid sg = w.group(file, "snapshots");
  return sg.ok();
}

bool write_snapshot(hid_t file, const SnapshotInfo& s, std::string* err) {
  Writer w(err);
  Hid snaps(H5Gopen2(file, "snapshots", H5P_DEFAULT), H5Gclose);
  if (!snaps.ok()) return w.h5fail("/snapshots");
  Hid g = w.group(snaps, std::to_string(s.seq));
  return g.ok() && w.attr_u64(g, "seq", s.seq) && w.attr_str(g, "kind", s.kind) &&
         w.attr_i64(g, "parent_seq", s.parent_seq) && w.attr_f64(g, "started", s.started) &&
         w.attr_f64(g, "committed", s.committed) &&
         w.attr_f64(g, "coordination_seconds", s.coordination_seconds) &&
         w.attr_f64(g, "write_seconds", s.write_seconds) &&
         w.attr_f64(g, "total_seconds", s.total_seconds) && w.attr_u8(g, "term", s.term ? 1 : 0) &&
         w.attr_str(g, "state", "complete") && w.ranks(g, s.ranks);
}

}  // namespace

std::string global_snapshot_dir(const std::string& base, int64_t mpirun_pid) {
  std::string b = base;
  while (b.size() > 1 && b.back() == '/') b.pop_back();
  return b + "/ompi_global_snapshot_" + std::to_string(mpirun_pid) + ".ckpt";
}

std::string rank_image_relpath(uint64_t seq, int rank) {
  return std::to_string(seq) + "/opal_snapshot_" + std::to_string(rank) + ".ckpt/image.crimg";
}

bool next_sequence(const std::string& gdir, uint64_t* seq, std::string* err) {
  if (!make_dirs(gdir, err)) return false;
  bool any = false;
  uint64_t max = 0;
  DIR* d = opendir(gdir.c_str());
  if (!d) return fail(err, gdir + ": " + errno_text(errno));
  while (dirent* e = readdir(d)) {
    uint64_t v = 0;
    if (!parse_seq(e->d_name, &v)) continue;
    struct stat st;
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
      continue;
    if (!any || v > max) max = v;
    any = true;
  }
  closedir(d);
  // A seq directory removed by hand must not let its number be reused while the metadata
  // still lists it.
  struct stat st;
  if (lstat((gdir + "/" + kMetaFileName).c_str(), &st) == 0) {
    GlobalSnapshot g;
    if (!read_global_snapshot(gdir, &g, err)) return false;
    for (const SnapshotInfo& s : g.snapshots) {
      if (!any || s.seq > max) max = s.seq;
      any = true;
    }
  }
  if (any && max == UINT64_MAX) return fail(err, gdir + ": sequence numbers exhausted");
  *seq = any ? max + 1 : 0;
  return true;
}

bool prepare_rank_dir(const std::string& gdir, uint64_t seq, int rank, std::string* err) {
  if (rank < 0) return fail(err, gdir + ": rank " + std::to_string(rank) + " is not valid");
  // On node-local storage the other ranks' nodes do not have gdir yet.
  if (!make_dirs(gdir, err)) return false;
  const std::string sdir = gdir + "/" + std::to_string(seq);
  return make_dir(sdir, err) &&
         make_dir(sdir + "/opal_snapshot_" + std::to_string(rank) + ".ckpt", err);
}

bool commit_snapshot(const std::string& gdir, const JobInfo& job_in, const SnapshotInfo& snap,
                     std::string* err) {
  const std::string what = "cannot commit snapshot " + std::to_string(snap.seq) + " to " + gdir;
  std::string why;
  JobInfo job = job_in;
  // Only the C/R and MCA settings are kept; the rest of an environment may hold secrets.
  std::erase_if(job.environment, [](const std::string& e) { return !valid_env_entry(e); });
  if (!validate_job(job, &why) || !validate_snapshot(snap, job.nprocs, &why))
    return fail(err, what + ": " + why);
  if (!check_dir(gdir, &why)) return fail(err, what + ": " + why);

  const std::string meta = gdir + "/" + kMetaFileName;
  const std::string tmp = meta + ".tmp." + std::to_string(getpid());
  unlink(tmp.c_str());  // left by an earlier process with our pid
  struct stat st;
  const bool exists = lstat(meta.c_str(), &st) == 0;
  if (exists) {
    GlobalSnapshot old;
    if (!read_global_snapshot(gdir, &old, &why)) return fail(err, what + ": " + why);
    if (old.job.nprocs != job.nprocs)
      return fail(err, what + ": " + meta + " describes a job of " +
                           std::to_string(old.job.nprocs) + " ranks, not " +
                           std::to_string(job.nprocs));
    bool have_parent = snap.parent_seq < 0;
    for (const SnapshotInfo& s : old.snapshots) {
      if (s.seq == snap.seq) return fail(err, what + ": snapshot already committed");
      have_parent = have_parent || s.seq == static_cast<uint64_t>(snap.parent_seq);
    }
    if (!have_parent)
      return fail(err, what + ": parent snapshot " + std::to_string(snap.parent_seq) +
                           " is not a complete snapshot");
    if (!copy_file(meta, tmp, &why)) {
      unlink(tmp.c_str());
      return fail(err, what + ": " + why);
    }
  } else {
    if (snap.parent_seq >= 0)
      return fail(err, what + ": parent snapshot " + std::to_string(snap.parent_seq) +
                           " is not a complete snapshot (no metadata file yet)");
    // Created here, 0600, so HDF5 (which would use 0666 & ~umask) only truncates it.
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return fail(err, what + ": " + tmp + ": " + errno_text(errno));
    close(fd);
  }

  bool ok;
  {
    QuietHdf5 quiet;
    Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    hid_t f = exists ? H5Fopen(tmp.c_str(), H5F_ACC_RDWR, fapl)
                     : H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f < 0) {
      ok = fail(&why, tmp + ": " + h5_reason());
    } else {
      ok = (exists || write_job(f, job, &why)) && write_snapshot(f, snap, &why);
      if (H5Fclose(f) < 0 && ok) ok = fail(&why, tmp + ": " + h5_reason());
    }
  }
  // Durable before visible, and the rename itself durable before anyone is told.
  ok = ok && fsync_path(tmp, 0, &why);
  if (ok && rename(tmp.c_str(), meta.c_str()) != 0)
    ok = fail(&why, meta + ": " + errno_text(errno));
  if (!ok) {
    unlink(tmp.c_str());
    return fail(err, what + ": " + why);
  }
  if (!fsync_path(gdir, O_DIRECTORY, &why)) return fail(err, what + ": " + why);
  return true;
}

bool read_global_snapshot(const std::string& gdir, GlobalSnapshot* out, std::string* err) {
  GlobalSnapshot g;
  g.dir = gdir;
  std::string why;
  if (!check_dir(gdir, &why)) return fail(err, why);
  if (!read_meta(gdir, &g, err)) return false;
  *out = std::move(g);
  return true;
}

}  // namespace ocr::snapc
