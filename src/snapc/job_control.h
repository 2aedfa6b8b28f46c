// Job-level control files: how ompi-checkpoint asks an MPI job (all its ranks' agents) for
// a coordinated checkpoint and follows it. They live in the same per-user control
// directory as the per-process files (control_channel.h) and follow the same rules
// (atomic 0600 writes, strict readers that check owner and every field):
//
//   <dir>/<mpirun_pid>.job-request          tool -> every rank   the pending request (one at a
//   time) <dir>/<mpirun_pid>.<id>.job-status      rank 0 -> tool       one progress line,
//   overwritten <dir>/<mpirun_pid>.<id>.job-result      rank 0 -> tool       outcome, written once
//   <dir>/<mpirun_pid>.<id>.rank<r>.error   rank r -> tool       rank r cannot take part
//
// Unlike the per-process request, the job request is read and not removed by the ranks:
// every rank must see the same request, and rank 0 removes it when the protocol ends.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ocr {

struct JobRequest {
  uint64_t id = 0;           // random, != 0; names the status/result/error files
  std::string snapshot_dir;  // absolute, or empty = the job's default
  bool term = false;         // end the job after a successful checkpoint
  bool verbose = false;
  std::string kind = "full";  // full | incremental | auto
  int64_t mpirun_pid = 0;     // set by write_job_request; checked by the reader
};

struct JobResult {
  uint64_t id = 0;
  bool ok = false;
  uint64_t seq = 0;
  std::string snapshot;  // absolute global snapshot dir (required when ok)
  std::string message;   // one line
  uint64_t bytes = 0, drained_messages = 0, drained_bytes = 0, micros = 0;
  int nprocs = 0;
};

// `owner_uid` as in control_channel.h: the user owning the job (-1 = geteuid()).

// Tool side. Fails if a request for the job is pending (one checkpoint at a time).
bool write_job_request(int64_t mpirun_pid, const JobRequest& req, std::string* err,
                       int64_t owner_uid = -1);
// Rank side: *present = false (and true returned) when there is no request; a request
// file that exists but is refused gives false with *present = true.
bool read_job_request(int64_t mpirun_pid, JobRequest* req, bool* present, std::string* err);
// Removes the request only if it still carries `id`; true if removed. Rank 0 at the end
// of the protocol; the tool when it gives up before any rank took the request up.
bool remove_job_request(int64_t mpirun_pid, uint64_t id, int64_t owner_uid = -1);

// Rank 0: progress ("coordinating: round 3, 2/4 ranks parked", "writing images", ...).
// The line is flattened to one line of at most 1024 bytes.
bool write_job_status(int64_t mpirun_pid, uint64_t id, const std::string& line, std::string* err);
// Tool side; false when there is no (valid) status yet.
bool read_job_status(int64_t mpirun_pid, uint64_t id, std::string* line, int64_t owner_uid = -1);

// Rank 0, once per request (a second write fails).
bool write_job_result(int64_t mpirun_pid, const JobResult& res, std::string* err);
// Tool side: *present = false (and true returned) while there is no result yet.
bool read_job_result(int64_t mpirun_pid, uint64_t id, JobResult* res, bool* present,
                     std::string* err, int64_t owner_uid = -1);

// A rank that cannot take part (not yet in MPI_Init, already finalized, ...).
bool write_rank_error(int64_t mpirun_pid, uint64_t id, int rank, const std::string& message,
                      std::string* err);
// Sorted by rank. A malformed error file is reported as that rank's error, with the reason.
std::vector<std::pair<int, std::string>> read_rank_errors(int64_t mpirun_pid, uint64_t id,
                                                          int64_t owner_uid = -1);

// Removes the status, result and rank error files of request `id` (not the request).
void remove_job_files(int64_t mpirun_pid, uint64_t id, int64_t owner_uid = -1);

// Paths, for tests and messages.
std::string job_request_path(const std::string& dir, int64_t mpirun_pid);
std::string job_status_path(const std::string& dir, int64_t mpirun_pid, uint64_t id);
std::string job_result_path(const std::string& dir, int64_t mpirun_pid, uint64_t id);
std::string rank_error_path(const std::string& dir, int64_t mpirun_pid, uint64_t id, int rank);

}  // namespace ocr
