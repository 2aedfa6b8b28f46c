// ompi-checkpoint's job mode: a coordinated checkpoint of an MPI job started with
// `mpirun --am ft-enable-cr`, named by the PID of its mpirun (DESIGN §5, request
// propagation). The request goes into the job's control files (snapc/job_control.h), the
// trigger signal to mpirun, which forwards it to every rank; rank 0 reports progress and
// the outcome through the same files. Also --list: the job's complete snapshots.
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "snapc/control_channel.h"
#include "snapc/global_snapshot.h"
#include "snapc/job_control.h"
#include "tools/checkpoint_common.h"
#include "tools/snapshot_summary.h"
#include "tools/tool_paths.h"

namespace ocr::tools::checkpoint {

namespace {

using ull = unsigned long long;

// The ranks' runtime listens to OMPI_CR_SIGNAL (default SIGUSR2); mpirun forwards only
// SIGUSR1 and SIGUSR2, so those are the only choices here.
int trigger_signal(const std::vector<std::string>& env) {
  std::string v;
  if (env_value(env, "OMPI_CR_SIGNAL", &v) &&
      (v == "SIGUSR1" || v == "USR1" || v == std::to_string(SIGUSR1)))
    return SIGUSR1;
  return SIGUSR2;
}

double seconds_since(const timespec& start) {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) * 1e-9;
}

void nap_ms(long ms) {
  timespec t{0, ms * 1000 * 1000};
  nanosleep(&t, nullptr);
}

std::string local_time(double unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  char b[64];
  localtime_r(&t, &tm);
  strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S", &tm);
  return b;
}

}  // namespace

int checkpoint_job(const Options& opt) {
  const int64_t job = opt.job_pid;
  const int pid = static_cast<int>(job);
  const std::string name = "job " + std::to_string(job);
  const std::string failed = "checkpoint of " + name + " failed: ";
  unsigned euid = 0;
  require_ours(pid, &euid);
  std::vector<std::string> env;
  process_environ(pid, &env);
  adopt_control_dir_of(pid);
  const uint64_t start_time = ocr::process_start_time(pid);

  ocr::JobRequest req;
  req.id = random_id();
  req.term = opt.term;
  req.verbose = opt.verbose;
  req.kind = opt.incremental ? "incremental" : "full";
  if (!opt.snapshot_dir.empty()) req.snapshot_dir = ocr::tools::absolute_path(opt.snapshot_dir);

  catch_interrupts();
  std::string err;
  if (!ocr::write_job_request(job, req, &err, euid))
    fail("cannot request a checkpoint of " + name + ": " + err);
  if (kill(pid, trigger_signal(env)) != 0) {
    int e = errno;
    ocr::remove_job_request(job, req.id, euid);
    fail(failed + "cannot signal mpirun " + std::to_string(job) + ": " + strerror(e));
  }
  if (opt.nowait) {
    printf("Request: %llu (job %lld)\n", static_cast<ull>(req.id), static_cast<long long>(job));
    return 0;
  }

  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  std::string last_status;
  bool seen = false;  // some rank took the request up (status or error written)
  ocr::JobResult res;
  bool have_result = false;
  std::vector<std::pair<int, std::string>> rank_errors;
  double errors_at = -1;  // when rank errors appeared: rank 0's result may follow
  for (;;) {
    bool present = false;
    if (!ocr::read_job_result(job, req.id, &res, &present, &err, euid)) {
      if (present) ocr::remove_job_files(job, req.id, euid);
      fail(failed + "unreadable result: " + err);
    }
    if (present) {
      have_result = true;
      break;
    }
    std::string line;
    if (ocr::read_job_status(job, req.id, &line, euid)) {
      seen = true;
      if (line != last_status && (opt.status || opt.verbose)) {
        printf("Status: %s\n", line.c_str());
        fflush(stdout);
      }
      last_status = line;
    }
    if (rank_errors.empty()) {
      rank_errors = ocr::read_rank_errors(job, req.id, euid);
      if (!rank_errors.empty()) {
        seen = true;
        errors_at = seconds_since(start);
      }
    }
    // Rank 0 usually answers a rank's refusal with an error result; wait a moment for it
    // so the reason is complete, then report what we have.
    if (!rank_errors.empty() && seconds_since(start) - errors_at > 2) break;
    if (process_gone(pid, start_time)) {
      // It may have answered and then ended (--term): look once more.
      if (ocr::read_job_result(job, req.id, &res, &present, &err, euid) && present) {
        have_result = true;
        break;
      }
      if (!seen) ocr::remove_job_request(job, req.id, euid);
      ocr::remove_job_files(job, req.id, euid);
      fail(failed + "mpirun " + std::to_string(job) + " exited during the checkpoint");
    }
    const double elapsed = seconds_since(start);
    if (interrupted() || elapsed > opt.timeout) {
      // Withdraw only what no rank has seen; otherwise the ranks finish (or abort) on
      // their own and rank 0 removes the request.
      const bool withdrawn = !seen && ocr::remove_job_request(job, req.id, euid);
      char limit[32];
      snprintf(limit, sizeof limit, "%g", opt.timeout);
      std::string why;
      if (interrupted())
        why = withdrawn ? "interrupted (request withdrawn before any rank took it up)"
                        : "interrupted (the checkpoint may still complete)";
      else
        why = withdrawn ? std::string("no rank took the request up within ") + limit +
                              " s (are the ranks' ompi-cr agents alive?)"
                        : std::string("no result within ") + limit +
                              " s (the checkpoint may still complete)" +
                              (last_status.empty() ? "" : "; last status: " + last_status);
      fail(failed + why);
    }
    nap_ms(10);
  }

  ocr::remove_job_files(job, req.id, euid);
  if (!have_result || !res.ok) {
    // One line: rank 0's reason first, then every rank that refused, by rank.
    std::string why = have_result ? (res.message.empty() ? "no reason given" : res.message) : "";
    size_t shown = 0;
    for (const auto& [rank, message] : rank_errors) {
      if (shown == 8) {
        why += "; and " + std::to_string(rank_errors.size() - shown) + " more ranks";
        break;
      }
      why +=
          (why.empty() ? "" : "; ") + std::string("rank ") + std::to_string(rank) + ": " + message;
      shown++;
    }
    fail(failed + why);
  }
  if (opt.verbose) {
    printf("  %d ranks, %llu bytes written (%s), %llu messages (%llu bytes) drained, in %s\n",
           res.nprocs, static_cast<ull>(res.bytes), human_bytes(res.bytes).c_str(),
           static_cast<ull>(res.drained_messages), static_cast<ull>(res.drained_bytes),
           millis(res.micros).c_str());
    if (!res.message.empty()) printf("  %s\n", res.message.c_str());
  }
  printf("Snapshot Ref.: %llu %s\n", static_cast<ull>(res.seq), res.snapshot.c_str());
  return 0;
}

int list_snapshots(const Options& opt) {
  const int64_t job = opt.job_pid;
  std::string base;
  if (!opt.snapshot_dir.empty()) {
    base = ocr::tools::absolute_path(opt.snapshot_dir);
  } else {
    // Where the ranks put it by default: their (mpirun's) OMPI_CR_SNAPSHOT_DIR, else HOME.
    std::vector<std::string> env;
    std::string v;
    if (!process_environ(static_cast<int>(job), &env))
      fail("cannot read the environment of " + describe(static_cast<int>(job)) +
           " (give --snapshot-dir)");
    if (env_value(env, "OMPI_CR_SNAPSHOT_DIR", &v) && !v.empty())
      base = v;
    else if (env_value(env, "HOME", &v) && !v.empty())
      base = v;
    else
      fail(describe(static_cast<int>(job)) +
           " has neither OMPI_CR_SNAPSHOT_DIR nor HOME (give --snapshot-dir)");
    base = ocr::tools::absolute_path(base);
  }
  const std::string gdir = ocr::snapc::global_snapshot_dir(base, job);
  ocr::snapc::GlobalSnapshot g;
  std::string err;
  if (access(gdir.c_str(), F_OK) != 0)
    fail("no snapshots of job " + std::to_string(job) + ": " + gdir + " does not exist");
  if (!ocr::snapc::read_global_snapshot(gdir, &g, &err)) fail(err);
  for (const ocr::snapc::SnapshotInfo& s : g.snapshots) {
    uint64_t bytes = 0;
    for (const ocr::snapc::RankRecord& r : s.ranks) bytes += r.bytes_written;
    printf("%-6llu %-11s %s  %10s  %s/%llu\n", static_cast<ull>(s.seq), s.kind.c_str(),
           local_time(s.committed).c_str(), human_bytes(bytes).c_str(), gdir.c_str(),
           static_cast<ull>(s.seq));
  }
  return 0;
}

}  // namespace ocr::tools::checkpoint
