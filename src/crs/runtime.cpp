// The C/R runtime preloaded into every application process (libompi-cr.so).
//
// At load it installs two signal handlers and starts the agent thread. The trigger signal
// (SIGUSR2 by default) only wakes the agent through an eventfd; the agent reads the
// request that ompi-checkpoint left in the control directory, parks the application's
// threads (quiesce.h), writes the image (image_writer.h), answers with a result file and
// lets the threads go on, or ends the process (--term).
//
// The agent is itself part of the image: it captures its context just before writing,
// so in a restored process it wakes up at that point (ocr_ctx_capture returns 1), waits
// for every application thread to be back, frees the restorer's memory and releases them.
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <string>

#include "crs/dirty_tracker.h"
#include "crs/image_format.h"
#include "crs/image_writer.h"
#include "crs/job_image.h"
#include "crs/proc_maps.h"
#include "crs/quiesce.h"
#include "crs/region_classifier.h"
#include "crs/scratch_arena.h"
#include "hints/hints_internal.h"
#include "snapc/control_channel.h"

extern "C" {
// Where the restorer tells the restored runtime what it did (image_format.h).
__attribute__((visibility("default"))) ocr_restore_info ompi_cr_restore_info;
}

namespace ocr {
namespace {

constexpr uint32_t kRseqSig = 0x53053053;  // glibc's RSEQ_SIG on x86
constexpr int kDefaultQuiesceTimeoutMs = 10000;
constexpr int kDefaultCriticalSectionTimeoutMs = 30000;

struct Runtime {
  std::atomic<int> eventfd{-1};
  int trigger_signal = SIGUSR2;
  int quiesce_signal = 0;
  bool verbose = false;
  int quiesce_timeout_ms = kDefaultQuiesceTimeoutMs;
  int cs_timeout_ms = kDefaultCriticalSectionTimeoutMs;
  uint32_t tid_offset = 0;  // 0 = unknown: checkpoints are refused
  pid_t agent_tid = 0;
  alignas(ScratchArena) unsigned char arena_storage[sizeof(ScratchArena)] = {};
  ScratchArena* arena = nullptr;
  ocr_thread_record agent_rec{};
  // What the checkpoint in progress needs after the point where malloc is forbidden.
  char dir[OCR_MAX_PATH] = {};
  char final_path[OCR_MAX_PATH] = {};
  char tmp_path[OCR_MAX_PATH] = {};
  uint64_t seq = 0;
  int64_t t0 = 0;
  // Dirty tracking for incremental images (constructed in place: g_rt is constinit).
  alignas(DirtyTracker) unsigned char tracker_storage[sizeof(DirtyTracker)] = {};
  DirtyTracker* tracker = nullptr;
  DirtyBackend tracker_backend = DirtyBackend::kNone;
  char tracker_error[512] = {};
  // The newest image of this process (or the one it was restored from): the parent of
  // the next incremental image.
  char parent_path[OCR_MAX_PATH] = {};
  uint64_t parent_hash = 0;
  uint32_t parent_chain = 0;
  // In-process requests (ompi_cr_checkpoint): a flag the agent takes, and a counter of
  // finished checkpoints the requesting thread waits on; `restarts` tells it whether it
  // woke up in a restored process.
  std::atomic<uint64_t> requested{0};  // tickets handed out to in-process requesters
  std::atomic<uint64_t> taken{0};      // highest ticket the checkpoint in progress serves
  std::atomic<uint64_t> served{0};     // highest ticket whose checkpoint has finished
  std::atomic<uint32_t> done_gen{0};
  std::atomic<uint32_t> restarts{0};
  std::atomic<int> last_result{0};
  std::atomic<int> agent_running{0};
  std::atomic<JobWakeHook> job_hook{nullptr};
};
constinit Runtime g_rt;

void log(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log(const char* fmt, ...) {
  if (!g_rt.verbose) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) {
    char out[1100];
    int m = snprintf(out, sizeof out, "ompi-cr[%d]: %s\n", getpid(), buf);
    if (write(2, out, static_cast<size_t>(m)) < 0) { /* nothing to do */
    }
  }
}

int signal_from_env(const char* name, int def) {
  const char* v = getenv(name);
  if (!v || !*v) return def;
  if (!strcmp(v, "SIGUSR1") || !strcmp(v, "USR1")) return SIGUSR1;
  if (!strcmp(v, "SIGUSR2") || !strcmp(v, "USR2")) return SIGUSR2;
  char* end;
  long n = strtol(v, &end, 10);
  return (*end == 0 && n > 0 && n < 65) ? static_cast<int>(n) : def;
}

int int_from_env(const char* name, int def) {
  const char* v = getenv(name);
  if (!v || !*v) return def;
  char* end;
  long n = strtol(v, &end, 10);
  return (*end == 0 && n > 0 && n <= 24 * 3600 * 1000) ? static_cast<int>(n) : def;
}

// glibc keeps the kernel tid inside struct pthread; a restored thread has a new tid,
// which the restorer writes there. Find the field instead of trusting a constant.
uint32_t find_tid_offset() {
  const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
  auto* self = reinterpret_cast<const unsigned char*>(pthread_self());
  if (*reinterpret_cast<const pid_t*>(self + 720) == tid) return 720;  // glibc 2.36 x86_64
  for (uint32_t off = 4; off < 2048; off += 4)
    if (*reinterpret_cast<const pid_t*>(self + off) == tid) return off;
  return 0;
}

void trigger_handler(int) {
  int saved = errno;
  uint64_t one = 1;
  int fd = g_rt.eventfd.load();
  if (fd >= 0 && write(fd, &one, sizeof one) < 0) { /* the agent is busy; nothing to do */
  }
  errno = saved;
}

std::string default_snapshot_dir() {
  if (const char* d = getenv("OMPI_CR_SNAPSHOT_DIR"); d && *d) return d;
  if (const char* h = getenv("HOME"); h && *h) return h;
  return ".";
}

// mkdir -p with 0700 for what it creates.
bool make_dirs(const std::string& path, std::string* err) {
  for (size_t pos = 1; pos <= path.size(); pos++) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string part = path.substr(0, pos);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      *err = "cannot create snapshot directory " + part + ": " + strerror(errno);
      return false;
    }
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    *err = "snapshot directory " + path + " is not a directory";
    return false;
  }
  return true;
}

uint64_t next_seq(const std::string& dir) {
  uint64_t seq = 0;
  for (;; seq++) {
    std::string p = dir + "/" + std::to_string(seq) + ".crimg";
    if (access(p.c_str(), F_OK) != 0) return seq;
  }
}

int64_t now_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

void new_arena() {
  g_rt.arena = new (g_rt.arena_storage) ScratchArena();
}

void init_tracker() {
  g_rt.tracker = new (g_rt.tracker_storage) DirtyTracker();
  std::string err;
  if (g_rt.tracker->init(&err)) {
    g_rt.tracker_backend = g_rt.tracker->backend();
    return;
  }
  snprintf(g_rt.tracker_error, sizeof g_rt.tracker_error, "%s", err.c_str());
  // Only a backend the user forced is worth a word before any checkpoint is asked for.
  if (getenv("OMPI_CR_DIRTY_TRACKING")) {
    std::string line = "ompi-cr: " + err + "\n";
    if (write(2, line.data(), line.size()) < 0) { /* nothing else to tell */
    }
  }
}

// Why an incremental image cannot be written now, or nullptr if it can.
const char* incremental_blocker() {
  if (!g_rt.tracker || g_rt.tracker_backend == DirtyBackend::kNone)
    return g_rt.tracker_error[0] ? g_rt.tracker_error : "dirty tracking is disabled";
  if (!g_rt.parent_path[0]) return "no earlier image of this process to be incremental to";
  if (!g_rt.tracker->armed())
    return "dirty tracking was interrupted (failed checkpoint or restore); take a full image";
  if (access(g_rt.parent_path, R_OK) != 0) return "the parent image is gone";
  return nullptr;
}

// In a restored process, before any application thread runs again. No malloc: a thread
// may have been parked inside it.
void on_restored(uint32_t app_threads) {
  new_arena();  // the old arena was not saved; its object is simply overwritten
  int efd = eventfd(0, EFD_CLOEXEC);
  g_rt.eventfd.store(efd);
  g_rt.agent_tid = static_cast<pid_t>(syscall(SYS_gettid));
  if (!quiesce_wait_restored(app_threads, g_rt.quiesce_timeout_ms)) {
    static const char msg[] = "ompi-cr: restored threads did not come back\n";
    if (write(2, msg, sizeof msg - 1) < 0) { /* exiting anyway */
    }
    _exit(125);
  }
  if (ompi_cr_restore_info.magic == OCR_RESTORE_INFO_MAGIC && ompi_cr_restore_info.hole_size)
    munmap(reinterpret_cast<void*>(ompi_cr_restore_info.hole_start),
           ompi_cr_restore_info.hole_size);
  // The next incremental image builds on the one restored from; tracking must be armed
  // before the application writes anything.
  g_rt.restarts.fetch_add(1);
  snprintf(g_rt.parent_path, sizeof g_rt.parent_path, "%s", ompi_cr_restore_info.image_path);
  g_rt.parent_hash = ompi_cr_restore_info.image_hash;
  g_rt.parent_chain = ompi_cr_restore_info.chain_length;
  if (g_rt.tracker && g_rt.tracker_backend != DirtyBackend::kNone) {
    g_rt.tracker->forget_after_restore();
    if (g_rt.tracker->init_backend(g_rt.tracker_backend, nullptr)) {
      int err = 0;
      std::string_view smaps = read_whole_file("/proc/self/smaps", g_rt.arena, &err);
      std::pmr::vector<MapEntry> maps(g_rt.arena);
      std::pmr::vector<bool> eligible(g_rt.arena);
      const char* perr = nullptr;
      if (!smaps.empty() && parse_proc_maps(smaps, maps, &perr) == 0) {
        for (const MapEntry& m : maps) {
          const bool own = m.start < g_rt.arena->end() && g_rt.arena->begin() < m.end;
          eligible.push_back(dirty_tracking_eligible(m, classify_region(m, own)));
        }
        if (g_rt.tracker->reset(maps, eligible, g_rt.arena) != 0) g_rt.tracker->invalidate();
      }
    }
    g_rt.arena->reset();
  }
  quiesce_release();
}

void register_agent() {
  AgentInfo info;
  info.pid = getpid();
  info.start_time = process_start_time(info.pid);
  info.signal = g_rt.trigger_signal;
  info.uid = getuid();
  std::string err;
  if (!write_agent_info(info, &err))
    log("cannot register with the control directory: %s", err.c_str());
}

// Wakes the threads waiting in ompi_cr_checkpoint() for the checkpoint that just ended;
// an external (ompi-checkpoint) request serves no ticket and wakes nobody for good.
void finish_checkpoint(const CheckpointRequest& req, int result) {
  if (req.id != 0) return;
  g_rt.last_result.store(result);
  g_rt.served.store(g_rt.taken.load());
  g_rt.done_gen.fetch_add(1);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&g_rt.done_gen), FUTEX_WAKE, INT32_MAX, nullptr,
          nullptr, 0);
}

void report(const CheckpointRequest& req, bool ok, const char* image, const char* message,
            uint64_t seq, const ImageWriteResult* wr, uint64_t micros, uint64_t threads) {
  if (req.id == 0) return;  // an in-process request: answered through finish_checkpoint
  uint64_t zero[OCR_SKIP_REASONS] = {};
  write_result_nomalloc(getpid(), req.id, ok, image, message, seq, wr ? wr->saved_bytes : 0,
                        wr ? wr->skipped : zero, micros, threads);
}

// Returns 0 after a committed image, -1 otherwise; 1 in a restored process. `job` set: a
// rank's image in a coordinated checkpoint (paths, exemptions and the outcome come from
// and go to the MPI layer; nothing is reported through the control channel).
int write_checkpoint(const CheckpointRequest& req, const JobImageRequest* job = nullptr,
                     JobImageOutcome* out = nullptr) {
  g_rt.t0 = now_us();
  auto fail = [&](const char* message) {
    if (out) snprintf(out->message, sizeof out->message, "%s", message);
    report(req, false, "", message, 0, nullptr, 0, 0);
    return -1;
  };
  const std::string kind = job ? job->kind : req.kind;
  bool incremental = false;
  if (kind == "incremental" || kind == "auto") {
    const char* why = incremental_blocker();
    if (why && kind == "incremental")
      return fail((std::string("no incremental image: ") + why).c_str());
    incremental = why == nullptr;
  } else if (kind != "full") {
    return fail(("image kind '" + kind + "' is not supported").c_str());
  }
  if (!g_rt.tid_offset)
    return fail("glibc's thread id field was not found; cannot restore threads");
  std::string dir, final_path;
  if (job) {
    dir = job->dir;
    final_path = job->final_path;
    g_rt.seq = job->seq;
  } else {
    std::string base = req.snapshot_dir.empty() ? default_snapshot_dir() : req.snapshot_dir;
    dir = base + "/ompi_cr_" + std::to_string(getpid()) + ".ckpt";
    std::string err;
    if (!make_dirs(dir, &err)) return fail(err.c_str());
    g_rt.seq = next_seq(dir);
    final_path = dir + "/" + std::to_string(g_rt.seq) + ".crimg";
  }
  std::string tmp_path = final_path + ".tmp";
  if (tmp_path.size() >= OCR_MAX_PATH) return fail("snapshot path too long");
  // The parent is named relative to the new image when they share a directory.
  static char parent_ref[OCR_MAX_PATH];
  parent_ref[0] = 0;
  if (incremental) {
    std::string parent = g_rt.parent_path;
    if (parent.compare(0, dir.size() + 1, dir + "/") == 0) {
      parent = parent.substr(dir.size() + 1);
    } else if (parent.size() >= sizeof(ocr_image_header{}.parent)) {
      // Another directory (a restored process writes under its new PID): relative to the
      // real path of this image's directory ("../ompi_cr_<old pid>.ckpt/3.crimg"), which
      // is how the reader resolves it.
      char* real = realpath(dir.c_str(), nullptr);
      if (real) {
        std::string rel = std::filesystem::path(parent).lexically_relative(real).string();
        free(real);
        if (!rel.empty() && rel.size() < parent.size()) parent = rel;
      }
    }
    if (parent.size() >= sizeof(ocr_image_header{}.parent))
      return fail("parent image path too long for the header");
    snprintf(parent_ref, sizeof parent_ref, "%s", parent.c_str());
  }
  snprintf(g_rt.dir, sizeof g_rt.dir, "%s", dir.c_str());
  snprintf(g_rt.final_path, sizeof g_rt.final_path, "%s", final_path.c_str());
  snprintf(g_rt.tmp_path, sizeof g_rt.tmp_path, "%s", tmp_path.c_str());

  // From here until release: no malloc, no locks the application may hold.
  char qerr[256];
  static pid_t exempt[64];
  int nexempt = 0;
  exempt[nexempt++] = g_rt.agent_tid;
  for (int i = 0; job && i < job->nexempt && nexempt < 64; i++)
    exempt[nexempt++] = job->exempt_tids[i];
  int n = quiesce_all(exempt, nexempt, g_rt.quiesce_timeout_ms, qerr, sizeof qerr);
  if (n < 0) return fail(qerr);
  uint32_t nslots = 0;
  const ThreadSlot* slots = quiesce_slots(&nslots);
  static ocr_thread_record threads[kMaxThreadSlots + 1];
  uint32_t nthreads = 0;
  for (uint32_t i = 0; i < nslots; i++) threads[nthreads++] = slots[i].rec;
  const uint32_t app_threads = nthreads;

  g_rt.arena->reset();
  static std::pmr::vector<hints::ExcludedRange>* hinted;
  ocr_thread_record& agent = threads[nthreads++];
  memset(&agent, 0, sizeof agent);
  capture_thread_self(&agent);
  agent.flags = OCR_THREAD_RUNTIME;
  if (ocr_ctx_capture(&agent.ctx) != 0) {
    // A restored process, resuming here. Only what was set before the capture is valid.
    on_restored(app_threads);
    return 1;
  }

  // What the application asked to leave out, read while no thread can change it.
  hinted =
      new (g_rt.arena->allocate(sizeof *hinted, alignof(std::pmr::vector<hints::ExcludedRange>)))
          std::pmr::vector<hints::ExcludedRange>(g_rt.arena);
  hints::collect_exclusions(g_rt.arena, *hinted);
  static_assert(sizeof(hints::ExcludedRange) == sizeof(ExcludedPages));
  ImageWriteSpec spec;
  spec.excluded = reinterpret_cast<const ExcludedPages*>(hinted->data());
  spec.nexcluded = static_cast<int>(hinted->size());
  spec.dir = g_rt.dir;
  spec.final_path = g_rt.final_path;
  spec.tmp_path = g_rt.tmp_path;
  spec.seq = g_rt.seq;
  spec.threads = threads;
  spec.nthreads = nthreads;
  // What belongs to the runtime and is never saved: the arena, the tracker's own memory
  // and descriptors, the agent's eventfd.
  static AddressRange areas[16];
  static int rfds[256];
  int nareas = 0, nfds = 0;
  areas[nareas++] = {g_rt.arena->begin(), g_rt.arena->end()};
  rfds[nfds++] = g_rt.eventfd.load();
  if (g_rt.tracker) {
    uint64_t st[8], en[8];
    int n = g_rt.tracker->owned_ranges(st, en, 8);
    for (int i = 0; i < n && nareas < 16; i++) areas[nareas++] = {st[i], en[i]};
    nfds += g_rt.tracker->owned_fds(rfds + nfds, 15);
  }
  for (int i = 0; job && i < job->nfds && nfds < 256; i++) rfds[nfds++] = job->runtime_fds[i];
  spec.runtime_areas = areas;
  spec.nareas = nareas;
  spec.runtime_fds = rfds;
  spec.nfds = nfds;
  if (job) {
    spec.mpi_runtime_areas = job->mpi_areas;
    spec.nmpi_areas = job->nmpi_areas;
  }
  spec.tracker = g_rt.tracker_backend != DirtyBackend::kNone ? g_rt.tracker : nullptr;
  spec.incremental = incremental;
  spec.parent = parent_ref;
  spec.parent_hash = g_rt.parent_hash;
  spec.parent_chain_length = g_rt.parent_chain;
  spec.restore_info_addr = reinterpret_cast<uint64_t>(&ompi_cr_restore_info);
  spec.tid_offset = g_rt.tid_offset;
  spec.rseq_offset = static_cast<int32_t>(__rseq_offset);
  spec.rseq_size = __rseq_size ? 32 : 0;  // glibc registers the original 32-byte area
  spec.rseq_sig = kRseqSig;
  static ImageWriteResult wr;
  wr = ImageWriteResult{};
  int rc = write_image(g_rt.arena, spec, &wr);
  const uint64_t micros = static_cast<uint64_t>(now_us() - g_rt.t0);
  if (rc == 0) {
    snprintf(g_rt.parent_path, sizeof g_rt.parent_path, "%s", g_rt.final_path);
    g_rt.parent_hash = wr.header_hash;
    g_rt.parent_chain = wr.chain_length;
  }
  if (out) {
    out->wr = wr;
    out->micros = micros;
    out->threads = nthreads;
    out->incremental = incremental;
    if (rc != 0) snprintf(out->message, sizeof out->message, "%s", wr.message);
  }
  if (rc == 0 && req.term) {
    // Report, then end without running exit handlers: flushing stdio now would print
    // output the restored process prints again.
    report(req, true, g_rt.final_path, "", g_rt.seq, &wr, micros, nthreads);
    char agent_file[OCR_MAX_PATH];
    if (control_dir_nomalloc(agent_file, sizeof agent_file) == 0) {
      size_t n = strlen(agent_file);
      snprintf(agent_file + n, sizeof agent_file - n, "/%d.agent", getpid());
      unlink(agent_file);
    }
    syscall(SYS_exit_group, 0);
  }
  quiesce_release();
  g_rt.arena->reset();
  report(req, rc == 0, rc == 0 ? g_rt.final_path : "", rc == 0 ? "" : wr.message, g_rt.seq, &wr,
         micros, nthreads);
  log("checkpoint %s: %s", rc == 0 ? "committed" : "failed",
      rc == 0 ? g_rt.final_path : wr.message);
  return rc == 0 ? 0 : -1;
}

// The whole sequence around an image: callbacks and critical sections on both sides.
void checkpoint(const CheckpointRequest& req) {
  hints::run_callbacks(OMPI_CR_PHASE_CHECKPOINT);
  if (!hints::begin_checkpoint_barrier(g_rt.cs_timeout_ms)) {
    char msg[128];
    snprintf(msg, sizeof msg, "critical sections stayed open for more than %d ms",
             g_rt.cs_timeout_ms);
    report(req, false, "", msg, 0, nullptr, 0, 0);
    hints::run_callbacks(OMPI_CR_PHASE_CONTINUE);
    finish_checkpoint(req, -ETIMEDOUT);
    return;
  }
  int rc = write_checkpoint(req);
  hints::end_checkpoint_barrier();
  if (rc == 1) {
    register_agent();
    log("restored (generation %u)", g_rt.restarts.load());
    hints::run_callbacks(OMPI_CR_PHASE_RESTART);
    finish_checkpoint(req, 0);
    // In-process requests made after this image was taken are still to be served.
    if (g_rt.requested.load() > g_rt.taken.load()) {
      uint64_t one = 1;
      if (write(g_rt.eventfd.load(), &one, sizeof one) < 0) { /* the agent polls anyway */
      }
    }
    return;
  }
  hints::run_callbacks(OMPI_CR_PHASE_CONTINUE);
  finish_checkpoint(req, rc == 0 ? 0 : -EIO);
}

void* agent_main(void*) {
  g_rt.agent_tid = static_cast<pid_t>(syscall(SYS_gettid));
  if (find_tid_offset() != g_rt.tid_offset) g_rt.tid_offset = 0;
  register_agent();
  for (;;) {
    uint64_t v;
    ssize_t r = read(g_rt.eventfd.load(), &v, sizeof v);
    if (r < 0 && errno != EINTR && errno != EAGAIN) {
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, nullptr);
      continue;
    }
    CheckpointRequest req;
    std::string err;
    if (g_rt.requested.load() > g_rt.served.load()) {
      // Every ticket handed out so far is served by this one checkpoint.
      g_rt.taken.store(g_rt.requested.load());
      req.kind = "full";  // id 0: answered to the waiting threads, not through a file
      checkpoint(req);
      req = CheckpointRequest{};
    }
    if (take_request(getpid(), &req, &err)) {
      checkpoint(req);
    } else if (!err.empty()) {
      log("ignoring request: %s", err.c_str());
    }
    if (JobWakeHook hook = g_rt.job_hook.load()) hook();
  }
  return nullptr;
}

void start_agent() {
  int efd = eventfd(0, EFD_CLOEXEC);
  if (efd < 0) return;
  g_rt.eventfd.store(efd);
  sigset_t all, old;
  sigfillset(&all);
  // The agent inherits a fully blocked mask: signals meant for the application go to
  // application threads.
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  // Requests made before the agent first runs wait in the eventfd: the runtime is active
  // from here on.
  if (pthread_create(&t, &attr, agent_main, nullptr) == 0) g_rt.agent_running.store(1);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void child_after_fork() {
  // Threads do not survive fork: the child gets an agent of its own. Its images start a
  // lineage of their own, and the parent's tracking descriptors are not the child's.
  new_arena();
  g_rt.parent_path[0] = 0;
  // init() on the inherited object: it recognises and closes the parent's descriptors.
  if (g_rt.tracker) {
    std::string err;
    if (!g_rt.tracker->init(&err)) g_rt.tracker_backend = DirtyBackend::kNone;
  }
  start_agent();
}

__attribute__((constructor)) void runtime_init() {
  if (const char* d = getenv("OMPI_CR_DISABLE"); d && *d == '1') return;
  g_rt.verbose = getenv("OMPI_CR_VERBOSE") != nullptr;
  g_rt.trigger_signal = signal_from_env("OMPI_CR_SIGNAL", SIGUSR2);
  g_rt.quiesce_signal = signal_from_env("OMPI_CR_QUIESCE_SIGNAL", SIGRTMAX - 3);
  g_rt.quiesce_timeout_ms = int_from_env("OMPI_CR_QUIESCE_TIMEOUT_MS", kDefaultQuiesceTimeoutMs);
  g_rt.cs_timeout_ms = int_from_env("OMPI_CR_CS_TIMEOUT_MS", kDefaultCriticalSectionTimeoutMs);
  g_rt.tid_offset = find_tid_offset();
  new_arena();
  init_tracker();
  quiesce_install(g_rt.quiesce_signal);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = trigger_handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(g_rt.trigger_signal, &sa, nullptr);
  pthread_atfork(nullptr, nullptr, child_after_fork);
  start_agent();
}

__attribute__((destructor)) void runtime_fini() {
  remove_agent_info(getpid());
}

}  // namespace

void set_job_wake_hook(JobWakeHook hook) {
  g_rt.job_hook.store(hook);
}

void wake_agent() {
  uint64_t one = 1;
  int fd = g_rt.eventfd.load();
  if (fd >= 0 && write(fd, &one, sizeof one) < 0) { /* the agent is busy; nothing to do */
  }
}

void job_image_discard() {
  g_rt.parent_path[0] = 0;
  g_rt.parent_hash = 0;
  g_rt.parent_chain = 0;
  if (g_rt.tracker) g_rt.tracker->invalidate();
}

uint32_t restart_count() {
  return g_rt.restarts.load();
}

int job_image(const JobImageRequest& request, JobImageOutcome* outcome) {
  CheckpointRequest none;  // id 0: nothing goes through the control channel
  hints::run_callbacks(OMPI_CR_PHASE_CHECKPOINT);
  if (!hints::begin_checkpoint_barrier(g_rt.cs_timeout_ms)) {
    snprintf(outcome->message, sizeof outcome->message,
             "critical sections stayed open for more than %d ms", g_rt.cs_timeout_ms);
    hints::run_callbacks(OMPI_CR_PHASE_CONTINUE);
    return -1;
  }
  int rc = write_checkpoint(none, &request, outcome);
  hints::end_checkpoint_barrier();
  if (rc == 1) {
    register_agent();
    log("restored (generation %u)", g_rt.restarts.load());
    hints::run_callbacks(OMPI_CR_PHASE_RESTART);
    return 1;
  }
  hints::run_callbacks(OMPI_CR_PHASE_CONTINUE);
  return rc;
}

namespace hints {

bool runtime_active() {
  return g_rt.agent_running.load() != 0;
}

// ompi_cr_checkpoint(): asks the agent and waits. The calling thread is parked like any
// other during the checkpoint; it tells a restored process from the original by the
// restart counter, which the restored agent increments before releasing it.
int runtime_request_checkpoint(int* restarted) {
  if (!runtime_active()) return -ENOSYS;
  if (static_cast<pid_t>(syscall(SYS_gettid)) == g_rt.agent_tid) return -EDEADLK;
  const uint32_t restarts = g_rt.restarts.load();
  const uint64_t ticket = g_rt.requested.fetch_add(1) + 1;
  uint64_t one = 1;
  if (write(g_rt.eventfd.load(), &one, sizeof one) != sizeof one) return -errno;
  for (;;) {
    const uint32_t gen = g_rt.done_gen.load();
    if (g_rt.served.load() >= ticket) break;
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&g_rt.done_gen), FUTEX_WAIT, gen, nullptr,
            nullptr, 0);
  }
  if (restarted) *restarted = g_rt.restarts.load() != restarts;
  return g_rt.last_result.load();
}

}  // namespace hints
}  // namespace ocr
