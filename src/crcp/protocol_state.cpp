// Park loop and the agent's view of it (see protocol_state.h, docs/protocol.md).
#include "crcp/protocol_state.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "crcp/crcp_abort.h"
#include "crcp/crcp_custom.h"
#include "crcp/crcp_hooks.h"
#include "crcp/restored_rank.h"

extern "C" {
int ocr_crcp_ckpt_pending = 0;
}

namespace ocr::crcp {

ProtocolState g_proto;

namespace {

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, long timeout_ns) {
  timespec ts = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, &ts, nullptr,
          0);
}

void futex_wake_all(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr,
          nullptr, 0);
}

struct BehindScan {
  const std::unordered_map<uint64_t, uint64_t>* targets;
  bool behind;
};

// Behind: some communicator of this rank has a target above its collective count, so
// this rank must run on (through collectives if need be) until it gets there.
bool behind_locked() {
  if (g_proto.targets.empty()) return false;
  BehindScan scan{&g_proto.targets, false};
  comm_for_each(
      [](CommInfo* c, void* arg) {
        auto* s = static_cast<BehindScan*>(arg);
        auto it = s->targets->find(c->id);
        if (it != s->targets->end() && it->second > c->seq.load(std::memory_order_relaxed))
          s->behind = true;
      },
      &scan);
  return scan.behind;
}

// ompi-checkpoint --term: the snapshot is committed; end this rank the way a finished
// MPI process ends (so mpirun sees a clean exit), without exit handlers or stdio flushes:
// output still buffered belongs to the image and is printed by the restored job.
[[noreturn]] void end_rank() {
  ocr_crcp_MPI_Finalize();
  release_pmix();
  _exit(0);
}

}  // namespace

void counters_init(int world_size) {
  g_proto.counters.size = world_size;
  g_proto.counters.sent.reset(new std::atomic<uint64_t>[static_cast<size_t>(world_size)]);
  g_proto.counters.recv.reset(new std::atomic<uint64_t>[static_cast<size_t>(world_size)]);
  for (int i = 0; i < world_size; i++) {
    g_proto.counters.sent[i].store(0);
    g_proto.counters.recv[i].store(0);
  }
}

void park_here(bool at_collective, uint64_t entering) {
  if (g_proto.phase.load() != static_cast<int>(MpiPhase::kRunning)) return;
  std::unique_lock<std::mutex> lk(g_proto.mu);
  if (!checkpoint_pending()) return;
  g_proto.parked++;
  if (entering) g_proto.entering = entering;
  bool term = false;
  for (;;) {
    if (!checkpoint_pending()) {
      term = g_proto.term;
      break;
    }
    if (!g_proto.cut && (behind_locked() || (g_proto.any_behind && !at_collective))) break;
    uint32_t gen = g_proto.gen.load();
    if (g_proto.cut) {
      g_proto.idle++;
      lk.unlock();
      futex_wait(&g_proto.gen, gen, 50 * 1000 * 1000L);
      lk.lock();
      g_proto.idle--;
      continue;
    }
    g_proto.incomplete = drain_step();
    lk.unlock();
    futex_wait(&g_proto.gen, gen, 1000 * 1000L);
    lk.lock();
  }
  g_proto.parked--;
  if (entering) g_proto.entering = 0;
  lk.unlock();
  if (term) end_rank();
}

void agent_begin() {
  std::lock_guard<std::mutex> lk(g_proto.mu);
  g_proto.targets.clear();
  g_proto.any_behind = false;
  g_proto.cut = false;
  g_proto.term = false;
  g_proto.incomplete = 0;
  __atomic_store_n(&ocr_crcp_ckpt_pending, 1, __ATOMIC_SEQ_CST);
}

LocalSnapshot agent_snapshot() {
  LocalSnapshot s;
  std::lock_guard<std::mutex> lk(g_proto.mu);
  s.parked = g_proto.parked;
  s.incomplete = g_proto.incomplete;
  s.entering = g_proto.entering;
  s.ready = g_proto.parked > 0 && g_proto.incomplete == 0 && !behind_locked();
  comm_for_each(
      [](CommInfo* c, void* arg) {
        static_cast<LocalSnapshot*>(arg)->seqs.emplace_back(c->id,
                                                            c->seq.load(std::memory_order_relaxed));
      },
      &s);
  // Freed communicators keep counting: a member that has not freed one yet may still be
  // behind on its last collectives.
  for (const auto& r : comm_retired()) s.seqs.push_back(r);
  const int n = g_proto.counters.size;
  s.sent.resize(static_cast<size_t>(n));
  s.recv.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) {
    s.sent[static_cast<size_t>(i)] = g_proto.counters.sent[i].load();
    s.recv[static_cast<size_t>(i)] = g_proto.counters.recv[i].load();
  }
  s.drained_messages = g_proto.counters.drained_messages.load();
  s.drained_bytes = g_proto.counters.drained_bytes.load();
  return s;
}

void agent_set_targets(const std::unordered_map<uint64_t, uint64_t>& targets, bool any_behind) {
  std::lock_guard<std::mutex> lk(g_proto.mu);
  g_proto.targets = targets;
  g_proto.any_behind = any_behind;
  g_proto.gen.fetch_add(1);
  futex_wake_all(&g_proto.gen);
}

bool agent_cut() {
  {
    std::lock_guard<std::mutex> lk(g_proto.mu);
    if (g_proto.parked == 0) return false;
    g_proto.cut = true;
    g_proto.gen.fetch_add(1);
    futex_wake_all(&g_proto.gen);
  }
  for (;;) {
    {
      std::lock_guard<std::mutex> lk(g_proto.mu);
      if (g_proto.idle == g_proto.parked) return true;
    }
    timespec ts = {0, 200 * 1000};
    nanosleep(&ts, nullptr);
  }
}

void agent_release(bool term) {
  std::lock_guard<std::mutex> lk(g_proto.mu);
  g_proto.term = term;
  g_proto.cut = false;
  g_proto.targets.clear();
  g_proto.any_behind = false;
  __atomic_store_n(&ocr_crcp_ckpt_pending, 0, __ATOMIC_SEQ_CST);
  g_proto.gen.fetch_add(1);
  futex_wake_all(&g_proto.gen);
}

}  // namespace ocr::crcp

extern "C" void ocr_crcp_safe_point_slow(void) {
  ocr::crcp::park_here();
}
