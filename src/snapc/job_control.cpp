// Job-level control files (see job_control.h), built on control_channel's atomic writer
// and strict key=value reader so they obey the same rules as the per-process files.
#include "snapc/job_control.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "snapc/control_channel.h"

namespace ocr {

namespace {

using ctl::KvFile;

constexpr uint64_t kMaxPid = 4194304;    // PID_MAX_LIMIT on 64-bit
constexpr uint64_t kMaxRanks = 1 << 24;  // far beyond any job this runs; bounds the reader
constexpr size_t kMaxLine = 4096;        // messages and status lines, as written and as read

std::string pid_text(int64_t pid) {
  return std::to_string(pid);
}
std::string request_name(int64_t pid) {
  return pid_text(pid) + ".job-request";
}
std::string id_prefix(int64_t pid, uint64_t id) {
  return pid_text(pid) + "." + std::to_string(id) + ".";
}
std::string status_name(int64_t pid, uint64_t id) {
  return id_prefix(pid, id) + "job-status";
}
std::string result_name(int64_t pid, uint64_t id) {
  return id_prefix(pid, id) + "job-result";
}
std::string rank_error_name(int64_t pid, uint64_t id, int rank) {
  return id_prefix(pid, id) + "rank" + std::to_string(rank) + ".error";
}

// Messages come from anywhere (strerror, MPI error strings): keep the key=value framing.
std::string one_line(const std::string& s) {
  std::string out = s.substr(0, kMaxLine);
  for (char& c : out)
    if (c == '\n' || c == '\r' || c == '\0') c = ' ';
  return out;
}

bool valid_pid(int64_t pid) {
  return pid > 0 && static_cast<uint64_t>(pid) <= kMaxPid;
}

bool valid_kind(const std::string& k) {
  return k == "full" || k == "incremental" || k == "auto";
}

bool valid_dir(const std::string& s, bool allow_empty) {
  if (s.empty()) return allow_empty;
  return s[0] == '/' && s.size() < PATH_MAX && s.find('\n') == std::string::npos &&
         s.find('\r') == std::string::npos;
}

bool bad(std::string* err, const std::string& what, const std::string& why) {
  if (err) *err = what + ": " + why;
  return false;
}

std::string errno_text(int e) {
  return strerror(e);
}

bool parse_request(const KvFile& f, int64_t pid, JobRequest* req, std::string* err) {
  JobRequest r;
  uint64_t p = 0;
  if (!f.version(err) || !f.u64("id", 1, UINT64_MAX, &r.id, err) ||
      !f.u64("mpirun_pid", 1, kMaxPid, &p, err))
    return false;
  if (static_cast<int64_t>(p) != pid)
    return f.fail(err, "names job " + std::to_string(p) + ", not " + pid_text(pid));
  r.mpirun_pid = static_cast<int64_t>(p);
  if (!f.str("snapshot_dir", &r.snapshot_dir, err)) return false;
  if (!valid_dir(r.snapshot_dir, true))
    return f.fail(err, "snapshot_dir=" + r.snapshot_dir + ": not an absolute path");
  if (!f.flag("term", &r.term, err) || !f.flag("verbose", &r.verbose, err) ||
      !f.str("kind", &r.kind, err))
    return false;
  if (!valid_kind(r.kind)) return f.fail(err, "kind=" + r.kind + ": not full, incremental or auto");
  *req = std::move(r);
  return true;
}

}  // namespace

std::string job_request_path(const std::string& dir, int64_t mpirun_pid) {
  return dir + "/" + request_name(mpirun_pid);
}
std::string job_status_path(const std::string& dir, int64_t mpirun_pid, uint64_t id) {
  return dir + "/" + status_name(mpirun_pid, id);
}
std::string job_result_path(const std::string& dir, int64_t mpirun_pid, uint64_t id) {
  return dir + "/" + result_name(mpirun_pid, id);
}
std::string rank_error_path(const std::string& dir, int64_t mpirun_pid, uint64_t id, int rank) {
  return dir + "/" + rank_error_name(mpirun_pid, id, rank);
}

// --- request ---

bool write_job_request(int64_t mpirun_pid, const JobRequest& req, std::string* err,
                       int64_t owner_uid) {
  const unsigned uid = ctl::resolve_uid(owner_uid);
  std::string dir;
  if (!ctl::resolve_dir(uid, &dir, err)) return false;
  const std::string path = job_request_path(dir, mpirun_pid);
  if (!valid_pid(mpirun_pid)) return bad(err, path, "not a valid mpirun pid");
  if (req.id == 0) return bad(err, path, "request id must not be 0");
  if (!valid_dir(req.snapshot_dir, true))
    return bad(err, path, "snapshot directory must be an absolute path: " + req.snapshot_dir);
  if (!valid_kind(req.kind))
    return bad(err, path, "kind must be full, incremental or auto, not " + req.kind);
  const std::string text =
      "version=1\nid=" + std::to_string(req.id) + "\nmpirun_pid=" + pid_text(mpirun_pid) +
      "\nsnapshot_dir=" + req.snapshot_dir + "\nterm=" + (req.term ? "1" : "0") +
      "\nverbose=" + (req.verbose ? "1" : "0") + "\nkind=" + req.kind + "\n";
  const int rc = ctl::write_text(dir, request_name(mpirun_pid), text, true, uid);
  if (rc == -EEXIST)
    return bad(err, path,
               "a checkpoint request for job " + pid_text(mpirun_pid) +
                   " is already pending (remove this file if no ompi-checkpoint is running)");
  if (rc != 0) return bad(err, path, errno_text(-rc));
  return true;
}

bool read_job_request(int64_t mpirun_pid, JobRequest* req, bool* present, std::string* err) {
  *present = false;
  std::string dir;
  if (!ctl::resolve_dir(geteuid(), &dir, err)) return false;
  KvFile f(job_request_path(dir, mpirun_pid));
  bool absent = false;
  const bool loaded = f.load(geteuid(), &absent, err);
  *present = !absent;  // a file we refuse is still a request that is there
  if (!loaded) return absent;
  return parse_request(f, mpirun_pid, req, err);
}

bool remove_job_request(int64_t mpirun_pid, uint64_t id, int64_t owner_uid) {
  const unsigned uid = ctl::resolve_uid(owner_uid);
  std::string dir;
  if (!ctl::resolve_dir(uid, &dir, nullptr)) return false;
  KvFile f(job_request_path(dir, mpirun_pid));
  bool absent = false;
  if (!f.load(uid, &absent, nullptr)) return false;
  // Only the id matters here: a malformed request carrying our id is still ours to remove.
  uint64_t found = 0;
  if (!f.u64("id", 1, UINT64_MAX, &found, nullptr) || found != id) return false;
  return unlink(f.path().c_str()) == 0;
}

// --- status ---

bool write_job_status(int64_t mpirun_pid, uint64_t id, const std::string& line, std::string* err) {
  std::string dir;
  if (!ctl::resolve_dir(geteuid(), &dir, err)) return false;
  const std::string text =
      "version=1\nid=" + std::to_string(id) + "\nstatus=" + one_line(line) + "\n";
  const int rc = ctl::write_text(dir, status_name(mpirun_pid, id), text, false, geteuid());
  if (rc != 0) return bad(err, job_status_path(dir, mpirun_pid, id), errno_text(-rc));
  return true;
}

bool read_job_status(int64_t mpirun_pid, uint64_t id, std::string* line, int64_t owner_uid) {
  const unsigned uid = ctl::resolve_uid(owner_uid);
  std::string dir;
  if (!ctl::resolve_dir(uid, &dir, nullptr)) return false;
  KvFile f(job_status_path(dir, mpirun_pid, id));
  bool absent = false;
  uint64_t found = 0;
  std::string s;
  if (!f.load(uid, &absent, nullptr) || !f.version(nullptr) ||
      !f.u64("id", 1, UINT64_MAX, &found, nullptr) || found != id ||
      !f.str("status", &s, nullptr) || s.size() > kMaxLine)
    return false;
  *line = std::move(s);
  return true;
}

// --- result ---

bool write_job_result(int64_t mpirun_pid, const JobResult& res, std::string* err) {
  std::string dir;
  if (!ctl::resolve_dir(geteuid(), &dir, err)) return false;
  const std::string path = job_result_path(dir, mpirun_pid, res.id);
  if (res.id == 0) return bad(err, path, "request id must not be 0");
  if (res.ok && !valid_dir(res.snapshot, false))
    return bad(err, path, "snapshot must be an absolute path: " + res.snapshot);
  if (!res.snapshot.empty() && !valid_dir(res.snapshot, false))
    return bad(err, path, "snapshot must be an absolute path: " + res.snapshot);
  if (res.nprocs < 0 || static_cast<uint64_t>(res.nprocs) > kMaxRanks)
    return bad(err, path, "nprocs out of range: " + std::to_string(res.nprocs));
  const std::string text =
      "version=1\nid=" + std::to_string(res.id) + "\nstatus=" + (res.ok ? "ok" : "error") +
      "\nseq=" + std::to_string(res.seq) + "\nsnapshot=" + res.snapshot +
      "\nmessage=" + one_line(res.message) + "\nbytes=" + std::to_string(res.bytes) +
      "\ndrained_messages=" + std::to_string(res.drained_messages) +
      "\ndrained_bytes=" + std::to_string(res.drained_bytes) +
      "\nmicros=" + std::to_string(res.micros) + "\nnprocs=" + std::to_string(res.nprocs) + "\n";
  const int rc = ctl::write_text(dir, result_name(mpirun_pid, res.id), text, true, geteuid());
  if (rc == -EEXIST) return bad(err, path, "a result for this request was already written");
  if (rc != 0) return bad(err, path, errno_text(-rc));
  return true;
}

bool read_job_result(int64_t mpirun_pid, uint64_t id, JobResult* res, bool* present,
                     std::string* err, int64_t owner_uid) {
  *present = false;
  const unsigned uid = ctl::resolve_uid(owner_uid);
  std::string dir;
  if (!ctl::resolve_dir(uid, &dir, err)) return false;
  KvFile f(job_result_path(dir, mpirun_pid, id));
  bool absent = false;
  const bool loaded = f.load(uid, &absent, err);
  *present = !absent;
  if (!loaded) return absent;
  JobResult r;
  std::string status;
  uint64_t nprocs = 0;
  if (!f.version(err) || !f.u64("id", 1, UINT64_MAX, &r.id, err)) return false;
  if (r.id != id) return f.fail(err, "answers request " + std::to_string(r.id));
  if (!f.str("status", &status, err)) return false;
  if (status != "ok" && status != "error")
    return f.fail(err, "status=" + status + ": not ok or error");
  r.ok = status == "ok";
  if (!f.str("snapshot", &r.snapshot, err) || !f.str("message", &r.message, err)) return false;
  if (!valid_dir(r.snapshot, !r.ok))
    return f.fail(err, "snapshot=" + r.snapshot + ": not an absolute path");
  if (r.message.size() > kMaxLine) return f.fail(err, "message too long");
  if (!f.u64("seq", 0, UINT64_MAX, &r.seq, err) || !f.u64("bytes", 0, UINT64_MAX, &r.bytes, err) ||
      !f.u64("drained_messages", 0, UINT64_MAX, &r.drained_messages, err) ||
      !f.u64("drained_bytes", 0, UINT64_MAX, &r.drained_bytes, err) ||
      !f.u64("micros", 0, UINT64_MAX, &r.micros, err) ||
      !f.u64("nprocs", r.ok ? 1 : 0, kMaxRanks, &nprocs, err))
    return false;
  r.nprocs = static_cast<int>(nprocs);
  *res = std::move(r);
  return true;
}

// --- rank errors ---

bool write_rank_error(int64_t mpirun_pid, uint64_t id, int rank, const std::string& message,
                      std::string* err) {
  std::string dir;
  if (!ctl::resolve_dir(geteuid(), &dir, err)) return false;
  const std::string path = rank_error_path(dir, mpirun_pid, id, rank);
  if (rank < 0 || static_cast<uint64_t>(rank) >= kMaxRanks)
    return bad(err, path, "rank out of range");
  const std::string text = "version=1\nid=" + std::to_string(id) +
                           "\nrank=" + std::to_string(rank) + "\nmessage=" + one_line(message) +
                           "\n";
  const int rc =
      ctl::write_text(dir, rank_error_name(mpirun_pid, id, rank), text, false, geteuid());
  if (rc != 0) return bad(err, path, errno_text(-rc));
  return true;
}

std::vector<std::pair<int, std::string>> read_rank_errors(int64_t mpirun_pid, uint64_t id,
                                                          int64_t owner_uid) {
  std::vector<std::pair<int, std::string>> out;
  const unsigned uid = ctl::resolve_uid(owner_uid);
  std::string dir;
  if (!ctl::resolve_dir(uid, &dir, nullptr)) return out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  const std::string prefix = id_prefix(mpirun_pid, id) + "rank";
  const std::string suffix = ".error";
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix))
      continue;
    const std::string digits =
        name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    // Canonical decimal only: "rank01.error" or a temporary file is not ours.
    if (digits.size() > 9 || (digits.size() > 1 && digits[0] == '0') ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    const int rank = std::stoi(digits);
    KvFile f(dir + "/" + name);
    bool absent = false;
    std::string why, message;
    uint64_t fid = 0, frank = 0;
    if (!f.load(uid, &absent, &why)) {
      if (absent) continue;  // removed meanwhile
    } else if (f.version(&why) && f.u64("id", 1, UINT64_MAX, &fid, &why) &&
               f.u64("rank", 0, kMaxRanks - 1, &frank, &why) && f.str("message", &message, &why)) {
      if (fid != id || frank != static_cast<uint64_t>(rank))
        why = f.path() + ": does not match its name (request " + std::to_string(fid) + ", rank " +
              std::to_string(frank) + ")";
      else if (message.size() > kMaxLine)
        why = f.path() + ": message too long";
    }
    out.emplace_back(rank, why.empty() ? message : "unreadable error report: " + why);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

void remove_job_files(int64_t mpirun_pid, uint64_t id, int64_t owner_uid) {
  std::string dir;
  if (!ctl::resolve_dir(ctl::resolve_uid(owner_uid), &dir, nullptr)) return;
  unlink(job_status_path(dir, mpirun_pid, id).c_str());
  unlink(job_result_path(dir, mpirun_pid, id).c_str());
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  const std::string prefix = id_prefix(mpirun_pid, id) + "rank";
  std::vector<std::string> doomed;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.compare(0, prefix.size(), prefix) == 0 && name.size() > 6 &&
        name.compare(name.size() - 6, 6, ".error") == 0)
      doomed.push_back(dir + "/" + name);
  }
  closedir(d);
  for (const std::string& p : doomed) unlink(p.c_str());
}

}  // namespace ocr
