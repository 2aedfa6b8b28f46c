// The control channel between the tools (ompi-checkpoint) and the runtime inside a
// process (its agent thread): small key=value files in a per-user control directory plus
// the trigger signal. Files, not sockets, because the runtime must be able to answer with
// no allocation while the application is frozen, and because a file left behind by a
// crashed side is easy to spot and clean up.
//
//   <dir>/<pid>.agent          runtime -> tool  the process runs under ompi-cr, and how to wake it
//   <dir>/<pid>.request        tool -> runtime  one pending checkpoint request
//   <dir>/<pid>.<id>.result    runtime -> tool  outcome of request <id>
//
// Every file is written to "<name>.tmp.<writer pid>" (mode 0600), fsync'd and renamed, so
// a reader sees a whole file or none. Readers trust nothing: the file must be a regular
// file of the current user, every known key is syntax- and range-checked, a missing
// required key is an error; unknown keys are ignored (room for later versions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "crs/image_format.h"

namespace ocr {

struct AgentInfo {
  int pid = 0;
  uint64_t start_time = 0;  // field 22 of /proc/<pid>/stat: tells a reused pid apart
  int signal = 0;           // trigger signal the agent listens to
  unsigned uid = 0;
};

struct CheckpointRequest {
  uint64_t id = 0;           // random, != 0; names the result file
  std::string snapshot_dir;  // absolute, or empty for the process default
  bool term = false;         // end the process after a successful checkpoint
  bool verbose = false;
  std::string kind = "full";  // full | incremental | auto
};

struct CheckpointResult {
  uint64_t id = 0;
  bool ok = false;
  std::string image, message;
  uint64_t seq = 0, saved_bytes = 0, micros = 0, threads = 0;
  uint64_t skipped[OCR_SKIP_REASONS] = {};
};

// Tool-side functions take `owner_uid`: the user whose control directory and files are
// meant, i.e. the owner of the target process. -1 means geteuid(). Only root can usefully
// pass another uid (checkpointing another user's process); files root writes there are
// chowned to that user so the runtime accepts them.

// Resolves the control directory ($OMPI_CR_CONTROL_DIR, else /tmp/ompi-cr-<uid>),
// creates it 0700 if missing, and refuses it unless it is a real directory (not a symlink)
// owned by the uid and not writable by group or others.
bool control_dir(std::string* dir, std::string* error, int64_t owner_uid = -1);

// Allocation-free core of control_dir() for geteuid(): writes the path into buf. Returns 0
// or -errno: -EINVAL relative $OMPI_CR_CONTROL_DIR, -ENAMETOOLONG, -ENOTDIR not a directory,
// -EPERM wrong owner, -EACCES group/other-writable, or what mkdir/lstat said.
int control_dir_nomalloc(char* buf, size_t cap);

// Start time of a process (field 22 of /proc/<pid>/stat, clock ticks since boot); 0 if no
// such process. Allocation-free.
uint64_t process_start_time(int pid);
// State letter of a process (field 3: R, S, D, Z, ...); 0 if no such process.
char process_state(int pid);

// Runtime side, at start-up: publishes <pid>.agent and drops a stale <pid>.request left
// by an earlier process with the same pid.
bool write_agent_info(const AgentInfo& info, std::string* err);
bool read_agent_info(int pid, AgentInfo* info, std::string* err, int64_t owner_uid = -1);
void remove_agent_info(int pid);  // allocation-free, errors ignored

// Tool side. Fails if a request for pid is already pending (one checkpoint at a time).
bool write_request(int pid, const CheckpointRequest& req, std::string* err, int64_t owner_uid = -1);
// Removes <pid>.request if it is still there and carries `id` (a tool giving up). Returns
// true if it removed it (the runtime never saw the request).
bool withdraw_request(int pid, uint64_t id, int64_t owner_uid = -1);
// Runtime side: reads and removes <pid>.request. When the file is malformed the request
// is still removed, false is returned, and req->id holds the id if that much was
// readable (so an error result can be reported), else 0.
bool take_request(int pid, CheckpointRequest* req, std::string* err);

// Tool side: *present = false (and true returned) while the result does not exist yet.
bool read_result(int pid, uint64_t id, CheckpointResult* res, bool* present, std::string* err,
                 int64_t owner_uid = -1);
void remove_result(int pid, uint64_t id, int64_t owner_uid = -1);

// Runtime side, allocation-free (called with application threads frozen, and just before
// the process exits with --term). image/message may be null; message is flattened to one
// line and truncated to 1024 bytes. Returns 0 or -errno.
int write_result_nomalloc(int pid, uint64_t id, bool ok, const char* image, const char* message,
                          uint64_t seq, uint64_t saved_bytes, const uint64_t* skipped,
                          uint64_t micros, uint64_t threads);

// For tests and the tools' messages.
std::string agent_info_path(const std::string& dir, int pid);
std::string request_path(const std::string& dir, int pid);
std::string result_path(const std::string& dir, int pid, uint64_t id);

// --- Building blocks, shared with the job-level control files (snapc/job_control.h) ---
// Not part of the tool <-> runtime protocol above; they exist so that every control file
// follows the same rules (atomic 0600 writes, strict readers).
namespace ctl {

unsigned resolve_uid(int64_t owner_uid);  // -1 -> geteuid()
// control_dir() for an already resolved uid.
bool resolve_dir(unsigned uid, std::string* dir, std::string* err);
// Writes <dir>/<name> atomically: "<name>.tmp.<pid>" (0600, chowned to owner when root
// writes for another user), fsync, rename; with `exclusive`, link instead, so an existing
// name is kept and -EEXIST returned. Returns 0 or -errno.
int write_text(const std::string& dir, const std::string& name, const std::string& text,
               bool exclusive, unsigned owner);

// A key=value file read strictly: a regular file of `owner`, not writable by group or
// others, at most 64 KiB, every non-empty line "key=value" with a [a-z0-9_-] key, no
// duplicate keys, no NUL/CR in values. Errors read "<path>: <reason>".
class KvFile {
 public:
  explicit KvFile(std::string path);
  // Returns false with *absent = true when the file does not exist.
  bool load(unsigned owner, bool* absent, std::string* err);
  const std::string& path() const { return path_; }
  const std::string* find(const char* key) const;
  // Decimal in [min, max]; a missing key is an error.
  bool u64(const char* key, uint64_t min, uint64_t max, uint64_t* out, std::string* err) const;
  bool flag(const char* key, bool* out, std::string* err) const;  // 0 or 1
  bool str(const char* key, std::string* out, std::string* err) const;
  bool version(std::string* err) const;                       // version=1
  bool fail(std::string* err, const std::string& why) const;  // always false

 private:
  bool missing(const char* key, std::string* err) const;
  bool parse(const std::string& text, std::string* err);

  std::string path_;
  std::vector<std::pair<std::string, std::string>> kv_;
};

}  // namespace ctl

}  // namespace ocr
