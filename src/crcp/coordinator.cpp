// Coordinated checkpoint, agent side (see coordinator.h and docs/protocol.md).
//
//   round "hello": every agent says whether its rank can take part (MPI initialized and not
//                  finalized); rank 0 adds the sequence number and snapshot directory.
//   rounds 1..:    each agent publishes its rank's state (ready = parked at a safe point,
//                  not behind, nothing incomplete), collective counts per communicator and
//                  message counters per peer; all compute the same collective targets and
//                  the same verdict. Repeat until every rank is ready, all counts equal
//                  their targets and every sent message was received (drained).
//   cut:           parked threads leave the library alone; each agent writes its image.
//   round "image": every agent publishes its outcome and rank record; rank 0 commits the
//                  HDF5 metadata and answers ompi-checkpoint.
//   round "commit": rank 0 tells everybody whether the snapshot is committed; then all
//                  release their threads (or end the job with --term).
// Any agent can vote to abort in any round (request withdrawn, rank finalizing); all
// agents then abort in the same round, release their threads and the job runs on.
#include "crcp/coordinator.h"

#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "crcp/crcp_abort.h"
#include "crcp/crcp_hooks.h"
#include "crcp/library_footprint.h"
#include "crcp/pmix_exchange.h"
#include "crcp/protocol_state.h"
#include "crcp/replay_log.h"
#include "crcp/restored_rank.h"
#include "crs/job_image.h"
#include "hints/hints_internal.h"
#include "ompi_cr/hints.h"
#include "snapc/global_snapshot.h"
#include "snapc/job_control.h"

namespace ocr::crcp {
namespace {

struct Coordinator {
  int64_t mpirun_pid = 0;
  int env_rank = -1;
  pmix_proc_t proc{};
  bool pmix = false;
  uint64_t handled_id = 0;  // the last request this agent took part in
  uint64_t refused_id = 0;  // a request answered "not in MPI yet"
  int64_t last_committed_seq = -1;
  uint64_t round_key = 0;
};
Coordinator g_co;

double now_seconds() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double mono_seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string rank_name() {
  return "rank " + std::to_string(g_proto.world_rank >= 0 ? g_proto.world_rank : g_co.env_rank);
}

std::string next_key(uint64_t id, const char* what) {
  return "ompi-cr." + std::to_string(id) + "." + std::to_string(++g_co.round_key) + "." + what;
}

// Binary round blobs: little-endian u64 words.
struct Writer {
  std::string s;
  void u64(uint64_t v) { s.append(reinterpret_cast<const char*>(&v), sizeof v); }
};
struct Reader {
  const std::string& s;
  size_t at = 0;
  bool ok = true;
  uint64_t u64() {
    uint64_t v = 0;
    if (at + sizeof v > s.size()) {
      ok = false;
      return 0;
    }
    memcpy(&v, s.data() + at, sizeof v);
    at += sizeof v;
    return v;
  }
};

std::string default_base_dir() {
  if (const char* d = getenv("OMPI_CR_SNAPSHOT_DIR"); d && *d) return d;
  if (const char* h = getenv("HOME"); h && *h) return h;
  return ".";
}

std::string absolute(const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  char cwd[PATH_MAX];
  return getcwd(cwd, sizeof cwd) ? std::string(cwd) + "/" + p : p;
}

bool request_still_there(uint64_t id) {
  JobRequest req;
  bool present = false;
  std::string err;
  return read_job_request(g_co.mpirun_pid, &req, &present, &err) && present && req.id == id;
}

void status_line(uint64_t id, const std::string& line) {
  if (g_proto.world_rank != 0) return;
  std::string err;
  write_job_status(g_co.mpirun_pid, id, line, &err);
  vlog("%s", line.c_str());
}

void answer(const JobRequest& req, bool ok, const std::string& message, uint64_t seq = 0,
            const std::string& gdir = "", uint64_t bytes = 0, uint64_t drained = 0,
            uint64_t drained_bytes = 0, uint64_t micros = 0) {
  if (g_proto.world_rank != 0) return;
  JobResult res;
  res.id = req.id;
  res.ok = ok;
  res.seq = seq;
  res.snapshot = gdir;
  res.message = message;
  res.bytes = bytes;
  res.drained_messages = drained;
  res.drained_bytes = drained_bytes;
  res.micros = micros;
  res.nprocs = g_proto.world_size;
  std::string err;
  if (!write_job_result(g_co.mpirun_pid, res, &err))
    vlog("cannot write the job result: %s", err.c_str());
  remove_job_request(g_co.mpirun_pid, req.id);
}

snapc::JobInfo job_info(const std::vector<snapc::RankRecord>& records) {
  snapc::JobInfo job;
  job.mpirun_pid = g_co.mpirun_pid;
  job.nprocs = g_proto.world_size;
  std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
  std::string arg;
  while (std::getline(cmdline, arg, '\0')) job.argv.push_back(arg);
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd)) job.cwd = cwd;
  // The user's settings, not the old job's launch state (daemon URIs, the transport
  // precondition key, how this job's ranks were started): a restart gets new ones.
  static const char* const kLaunchState[] = {"OMPI_MCA_orte_",
                                             "OMPI_MCA_pmix",
                                             "OMPI_MCA_ess",
                                             "OMPI_MCA_mca_base_env_list",
                                             "OMPI_MCA_mca_base_param_file_prefix",
                                             "OMPI_CR_MPIRUN_PID=",
                                             "OMPI_MCA_rmaps_base_oversubscribe",
                                             "OMPI_MCA_mpi_oversubscribe"};
  for (char** e = environ; e && *e; e++) {
    if (strncmp(*e, "OMPI_CR_", 8) != 0 && strncmp(*e, "OMPI_MCA_", 9) != 0) continue;
    bool launch = false;
    for (const char* prefix : kLaunchState) launch = launch || !strncmp(*e, prefix, strlen(prefix));
    if (!launch) job.environment.push_back(*e);
  }
  job.mpi_library = g_proto.library_version;
  std::set<std::string> hosts;
  for (const auto& r : records) hosts.insert(std::string(r.host, strnlen(r.host, sizeof r.host)));
  job.hosts.assign(hosts.begin(), hosts.end());
  return job;
}

// Rounds until the cut. Returns "" when the cut is reached, else why the checkpoint is off.
std::string coordinate(const JobRequest& req, double* rounds_out) {
  const int n = g_proto.world_size;
  std::string last_status;
  for (int round = 1;; round++) {
    *rounds_out = round;
    LocalSnapshot s = agent_snapshot();
    std::string abort_reason;
    if (g_proto.phase.load() != static_cast<int>(MpiPhase::kRunning))
      abort_reason = rank_name() + " entered MPI_Finalize during the checkpoint";
    else if (!request_still_there(req.id))
      abort_reason = "the request was withdrawn (ompi-checkpoint gave up or was interrupted)";
    Writer w;
    w.u64(abort_reason.size());
    w.s += abort_reason;
    while (w.s.size() % 8) w.s += '\0';
    w.u64(s.ready);
    w.u64(s.entering);
    w.u64(s.incomplete);
    w.u64(s.drained_messages);
    w.u64(s.seqs.size());
    for (auto& [id, seq] : s.seqs) {
      w.u64(id);
      w.u64(seq);
    }
    for (int i = 0; i < n; i++) w.u64(s.sent[static_cast<size_t>(i)]);
    for (int i = 0; i < n; i++) w.u64(s.recv[static_cast<size_t>(i)]);
    std::vector<std::string> all;
    std::string err;
    if (!pmix_allgather(g_co.proc, n, next_key(req.id, "state"), w.s, &all, &err))
      return "coordination round failed: " + err;

    std::unordered_map<uint64_t, uint64_t> targets;
    std::vector<std::vector<std::pair<uint64_t, uint64_t>>> seqs(static_cast<size_t>(n));
    std::vector<std::vector<uint64_t>> sent(static_cast<size_t>(n)), recv(static_cast<size_t>(n));
    std::vector<uint64_t> entering(static_cast<size_t>(n), 0);
    int ready = 0;
    uint64_t drained = 0;
    for (int r = 0; r < n; r++) {
      Reader rd{all[static_cast<size_t>(r)]};
      uint64_t len = rd.u64();
      if (len > 0) {
        if (len > rd.s.size()) return "malformed round data from rank " + std::to_string(r);
        return rd.s.substr(rd.at, len);
      }
      ready += rd.u64() ? 1 : 0;
      entering[static_cast<size_t>(r)] = rd.u64();
      rd.u64();  // incomplete
      drained += rd.u64();
      uint64_t ns = rd.u64();
      if (!rd.ok || ns > (1u << 20)) return "malformed round data from rank " + std::to_string(r);
      for (uint64_t k = 0; k < ns; k++) {
        uint64_t id = rd.u64(), seq = rd.u64();
        seqs[static_cast<size_t>(r)].emplace_back(id, seq);
        uint64_t& t = targets[id];
        t = std::max(t, seq);
      }
      for (int i = 0; i < n; i++) sent[static_cast<size_t>(r)].push_back(rd.u64());
      for (int i = 0; i < n; i++) recv[static_cast<size_t>(r)].push_back(rd.u64());
      if (!rd.ok) return "malformed round data from rank " + std::to_string(r);
    }
    uint64_t in_flight = 0;
    for (int a = 0; a < n; a++)
      for (int b = 0; b < n; b++) {
        uint64_t s_ab = sent[static_cast<size_t>(a)][static_cast<size_t>(b)];
        uint64_t r_ba = recv[static_cast<size_t>(b)][static_cast<size_t>(a)];
        if (s_ab > r_ba)
          in_flight += s_ab - r_ba;
        else if (s_ab < r_ba)
          in_flight += r_ba - s_ab;  // impossible unless counts are off
      }
    bool aligned = true;
    for (int r = 0; r < n && aligned; r++)
      for (auto& [id, seq] : seqs[static_cast<size_t>(r)])
        if (targets[id] != seq) aligned = false;
    if (ready == n && aligned && in_flight == 0) {
      status_line(req.id, "cut reached after " + std::to_string(round) + " rounds, " +
                              std::to_string(drained) + " messages drained; writing images");
      return "";
    }
    if (!aligned) {
      // Someone is behind. A collective whose members all wait at its entry, at its
      // target, may start: a rank that is behind may need what they do after it (e.g.
      // send it a message), and since all members enter, nobody falls behind on it.
      std::unordered_map<uint64_t, int> members, waiting;
      for (int r = 0; r < n; r++)
        for (auto& [id, seq] : seqs[static_cast<size_t>(r)]) {
          members[id]++;
          if (entering[static_cast<size_t>(r)] == id && seq == targets[id]) waiting[id]++;
        }
      for (auto& [id, count] : waiting)
        if (count == members[id]) targets[id]++;
    }
    agent_set_targets(targets, !aligned);
    std::string line = "coordinating: round " + std::to_string(round) + ", " +
                       std::to_string(ready) + "/" + std::to_string(n) + " ranks parked, " +
                       std::to_string(in_flight) + " messages in flight, " +
                       std::to_string(drained) + " drained";
    if (line != last_status) {
      status_line(req.id, line);
      last_status = line;
    }
    // Give the parked threads time to drain and the running ones to reach their targets;
    // the fence itself takes about a millisecond.
    timespec ts = {0, round < 20 ? 500 * 1000L : 5 * 1000 * 1000L};
    nanosleep(&ts, nullptr);
  }
}

void run_protocol(const JobRequest& req, const std::string& refusal) {
  const double t_start = mono_seconds();
  const double started = now_seconds();
  const int n = g_proto.world_size;
  const int me = g_proto.world_rank;
  // Threads must park from now on: a rank reaching MPI_Finalize parks there instead of
  // leaving MPI while the others coordinate.
  if (refusal.empty()) agent_begin();
  const LocalSnapshot before = agent_snapshot();  // drained counts are per snapshot

  // Round "hello".
  std::string hello = refusal.empty() ? "ok" : "refuse\n" + refusal;
  std::string base = req.snapshot_dir.empty() ? default_base_dir() : req.snapshot_dir;
  std::string gdir = snapc::global_snapshot_dir(absolute(base), g_co.mpirun_pid);
  uint64_t seq = 0;
  if (me == 0 && refusal.empty()) {
    std::string err;
    if (!snapc::next_sequence(gdir, &seq, &err))
      hello = "refuse\n" + err;
    else
      hello = "ok\nseq=" + std::to_string(seq) + "\ngdir=" + gdir;
  }
  std::vector<std::string> all;
  std::string err;
  if (!pmix_allgather(g_co.proc, n, next_key(req.id, "hello"), hello, &all, &err)) {
    agent_release(false);
    answer(req, false, "coordination failed: " + err);
    return;
  }
  for (int r = 0; r < n; r++) {
    const std::string& h = all[static_cast<size_t>(r)];
    if (h.compare(0, 7, "refuse\n") == 0) {
      agent_release(false);
      answer(req, false, h.substr(7));
      return;
    }
  }
  {
    std::istringstream in(all[0]);
    std::string line;
    while (std::getline(in, line)) {
      if (line.compare(0, 4, "seq=") == 0) seq = strtoull(line.c_str() + 4, nullptr, 10);
      if (line.compare(0, 5, "gdir=") == 0) gdir = line.substr(5);
    }
  }
  status_line(req.id,
              "coordinating: " + std::to_string(n) + " ranks, snapshot " + std::to_string(seq));

  double rounds = 0;
  std::string why = coordinate(req, &rounds);
  if (!why.empty()) {
    agent_release(false);
    answer(req, false, why);
    return;
  }
  if (!agent_cut()) {
    agent_release(false);
    answer(req, false, rank_name() + " has no application thread at a safe point");
    return;
  }
  const double t_cut = mono_seconds();

  // This rank's image. Receive buffers still posted in the library hold no message.
  std::vector<ompi_cr_handle_t> recvbufs;
  for (const PostedReceive& p : posted_receives()) {
    ompi_cr_handle_t h;
    if (ompi_cr_recvbuf_register(p.lo, p.len, &h) == OMPI_CR_SUCCESS) recvbufs.push_back(h);
  }
  snapc::RankRecord rec{};
  rec.rank = me;
  rec.pid = getpid();
  gethostname(rec.host, sizeof rec.host - 1);
  std::string rel = snapc::rank_image_relpath(seq, me);
  snprintf(rec.image_path, sizeof rec.image_path, "%s", rel.c_str());
  std::string image = gdir + "/" + rel;
  std::string image_dir = image.substr(0, image.rfind('/'));
  std::string failure;
  JobImageOutcome out;
  if (!snapc::prepare_rank_dir(gdir, seq, me, &err)) {
    failure = err;
  } else {
    LibraryFootprint fp = library_footprint(g_proto.library_tids, g_proto.library_fds);
    JobImageRequest jr;
    jr.dir = image_dir.c_str();
    jr.final_path = image.c_str();
    jr.kind = req.kind.c_str();
    jr.seq = seq;
    jr.exempt_tids = fp.tids.data();
    jr.nexempt = static_cast<int>(fp.tids.size());
    jr.runtime_fds = fp.fds.data();
    jr.nfds = static_cast<int>(fp.fds.size());
    jr.mpi_areas = fp.areas.data();
    jr.nmpi_areas = static_cast<int>(fp.areas.size());
    int rc = job_image(jr, &out);
    if (rc == 1) {
      // A restored rank resumes here (ompi-restart): its MPI library is a proxy now. The
      // original job finished this checkpoint; this process only goes on.
      for (ompi_cr_handle_t h : recvbufs) ompi_cr_recvbuf_deregister(h);
      std::string why;
      int64_t mpirun = 0;
      if (!become_proxied(&mpirun, &why)) {
        std::string line = "ompi-cr: restored " + rank_name() + " cannot continue: " + why + "\n";
        if (write(2, line.data(), line.size()) < 0) { /* exiting */
        }
        _exit(75);
      }
      // Every rank rebuilds its communicators in its proxy first (group-collective
      // creations); an application call that reaches a proxy still rebuilding (e.g. a
      // communicator split, which allocates an id over the whole job) could wait for it
      // forever. One round over PMIx: nobody resumes before everybody is ready.
      std::vector<std::string> ready_all;
      if (!pmix_allgather(g_co.proc, n, "ompi-cr.restored." + std::to_string(req.id), "ready",
                          &ready_all, &why)) {
        std::string line = "ompi-cr: restored " + rank_name() + " cannot continue: " + why + "\n";
        if (write(2, line.data(), line.size()) < 0) { /* exiting */
        }
        _exit(75);
      }
      g_co.mpirun_pid = mpirun;
      g_co.handled_id = req.id;
      // The restarted job writes its snapshots into a global snapshot directory of its own
      // (named after its mpirun), which cannot refer to images of another: its first
      // image is full.
      g_co.last_committed_seq = -1;
      job_image_discard();
      agent_release(false);
      return;
    }
    if (rc != 0) failure = out.message;
  }
  for (ompi_cr_handle_t h : recvbufs) ompi_cr_recvbuf_deregister(h);
  LocalSnapshot after = agent_snapshot();
  struct stat st;
  rec.bytes_written =
      failure.empty() && stat(image.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  rec.pages_saved = out.wr.saved_bytes / 4096;
  for (int i = 0; i < OCR_SKIP_REASONS; i++) rec.pages_skipped[i] = out.wr.skipped[i] / 4096;
  rec.image_hash = out.wr.header_hash;
  rec.write_seconds = static_cast<double>(out.micros) * 1e-6;
  rec.drained_messages = after.drained_messages - before.drained_messages;
  rec.drained_bytes = after.drained_bytes - before.drained_bytes;
  snprintf(rec.kind, sizeof rec.kind, "%s", out.incremental ? "incremental" : "full");

  // Round "image".
  std::string blob(reinterpret_cast<const char*>(&rec), sizeof rec);
  blob += failure.empty() ? "ok" : "fail\n" + rank_name() + ": " + failure;
  bool committed = false;
  std::string message;
  std::vector<snapc::RankRecord> records;
  if (!pmix_allgather(g_co.proc, n, next_key(req.id, "image"), blob, &all, &err)) {
    message = "coordination failed after the images: " + err;
  } else {
    for (int r = 0; r < n && message.empty(); r++) {
      const std::string& b = all[static_cast<size_t>(r)];
      if (b.size() < sizeof(snapc::RankRecord)) {
        message = "malformed image record from rank " + std::to_string(r);
        break;
      }
      snapc::RankRecord rr;
      memcpy(&rr, b.data(), sizeof rr);
      records.push_back(rr);
      std::string tail = b.substr(sizeof rr);
      if (tail.compare(0, 5, "fail\n") == 0) message = tail.substr(5);
    }
  }
  const double t_images = mono_seconds();
  uint64_t total_bytes = 0, drained_msgs = 0, drained_bytes = 0;
  double max_write = 0;
  bool any_incremental = false;
  for (const auto& r : records) {
    total_bytes += r.bytes_written;
    drained_msgs += r.drained_messages;
    drained_bytes += r.drained_bytes;
    max_write = std::max(max_write, r.write_seconds);
    if (!strcmp(r.kind, "incremental")) any_incremental = true;
  }
  if (me == 0 && message.empty()) {
    status_line(req.id, "committing snapshot " + std::to_string(seq));
    snapc::SnapshotInfo snap;
    snap.seq = seq;
    snap.kind = any_incremental ? "incremental" : "full";
    snap.parent_seq = any_incremental ? g_co.last_committed_seq : -1;
    snap.started = started;
    snap.committed = now_seconds();
    snap.coordination_seconds = t_cut - t_start;
    snap.write_seconds = max_write;
    snap.total_seconds = mono_seconds() - t_start;
    snap.term = req.term;
    snap.ranks = records;
    if (snapc::commit_snapshot(gdir, job_info(records), snap, &err))
      committed = true;
    else
      message = "cannot commit the snapshot metadata: " + err;
  }
  // Round "commit": everyone learns the outcome from rank 0.
  std::string verdict = committed ? "committed" : "failed";
  if (!pmix_allgather(g_co.proc, n, next_key(req.id, "commit"), verdict, &all, &err)) {
    committed = false;
    if (message.empty()) message = "coordination failed at the commit: " + err;
  } else {
    committed = all[0] == "committed";
  }
  if (committed)
    g_co.last_committed_seq = static_cast<int64_t>(seq);
  else if (failure.empty())
    job_image_discard();
  vlog("checkpoint %s: seq %llu, %.3f s coordination, %.3f s images, %llu drained",
       committed ? "committed" : "failed", static_cast<unsigned long long>(seq), t_cut - t_start,
       t_images - t_cut, static_cast<unsigned long long>(drained_msgs));
  answer(req, committed,
         committed ? "" : (message.empty() ? "the snapshot was not committed" : message), seq, gdir,
         total_bytes, drained_msgs, drained_bytes,
         static_cast<uint64_t>((mono_seconds() - t_start) * 1e6));
  agent_release(committed && req.term);
}

void on_wake() {
  if (!g_co.mpirun_pid) return;
  JobRequest req;
  bool present = false;
  std::string err;
  if (!read_job_request(g_co.mpirun_pid, &req, &present, &err)) {
    vlog("ignoring job request: %s", err.c_str());
    return;
  }
  if (!present || req.id == g_co.handled_id) return;
  const int phase = g_proto.phase.load();
  if (phase == static_cast<int>(MpiPhase::kBeforeInit)) {
    if (g_co.refused_id != req.id) {
      g_co.refused_id = req.id;
      write_rank_error(g_co.mpirun_pid, req.id, g_co.env_rank,
                       rank_name() + " has not called MPI_Init yet", &err);
    }
    return;  // it takes part (to refuse) once it is in MPI, so nobody waits forever
  }
  g_co.handled_id = req.id;
  if (!g_co.pmix) {
    write_rank_error(g_co.mpirun_pid, req.id, g_co.env_rank,
                     rank_name() + " has no PMIx connection; cannot coordinate", &err);
    return;
  }
  std::string refusal;
  if (g_co.refused_id == req.id)
    refusal = rank_name() + " had not called MPI_Init when the request came";
  else if (phase != static_cast<int>(MpiPhase::kRunning))
    refusal = rank_name() + " has already called MPI_Finalize";
  run_protocol(req, refusal);
}

__attribute__((constructor)) void coordinator_init() {
  if (const char* d = getenv("OMPI_CR_DISABLE"); d && *d == '1') return;
  const char* pid = getenv("OMPI_CR_MPIRUN_PID");
  if (!pid || !*pid) return;
  char* end;
  long long v = strtoll(pid, &end, 10);
  if (*end != 0 || v <= 0) return;
  g_co.mpirun_pid = v;
  if (const char* r = getenv("OMPI_COMM_WORLD_RANK")) g_co.env_rank = atoi(r);
  set_job_wake_hook(on_wake);
  hints::set_safe_point_hook(ocr_crcp_safe_point);
}

}  // namespace

void coordinator_mpi_ready(const pmix_proc_t* proc) {
  if (proc) {
    g_co.proc = *proc;
    g_co.pmix = true;
  }
  wake_agent();
}

}  // namespace ocr::crcp
