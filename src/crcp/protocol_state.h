// The rank-local half of the coordination protocol (docs/protocol.md): message counters,
// the checkpoint flag every wrapper reads, collective targets, and the park loop in which
// an application thread waits at a safe point (draining messages meanwhile) until the
// agent either lets it run on to a collective target or releases it after the image.
//
// Application threads enter through ocr_crcp_safe_point_slow() / coll_enter; the agent
// thread (coordinator.cpp) drives the rounds through the agent_* functions.
#pragma once

#include <mpi.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "crcp/comm_table.h"

namespace ocr::crcp {

enum class MpiPhase : int { kBeforeInit = 0, kRunning = 1, kFinalizing = 2, kFinalized = 3 };

struct Counters {
  int size = 0;
  std::unique_ptr<std::atomic<uint64_t>[]> sent;  // messages sent to world rank i
  std::unique_ptr<std::atomic<uint64_t>[]> recv;  // messages received from world rank i
  std::atomic<uint64_t> drained_messages{0}, drained_bytes{0};  // cumulative
};

struct ProtocolState {
  std::atomic<int> phase{0};
  int world_rank = -1, world_size = 0;
  int thread_level = MPI_THREAD_SINGLE;
  Counters counters;
  // What belongs to the MPI library (found around MPI_Init): left out of images.
  std::vector<pid_t> library_tids;
  std::vector<int> library_fds;
  std::string library_version;

  std::mutex mu;                 // guards everything below
  std::atomic<uint32_t> gen{0};  // futex word: parked threads wait on it
  bool cut = false;              // the cut is decided: parked threads stay out of the library
  bool term = false;             // with the release: end the job (ompi-checkpoint --term)
  std::unordered_map<uint64_t, uint64_t> targets;  // comm id -> collective target
  // Some rank is behind its targets: ranks that are not stay parked only at collective
  // entries and otherwise run on (point-to-point), since the rank behind may need their
  // messages to get to its collective.
  bool any_behind = false;
  int parked = 0;           // application threads in the park loop
  uint64_t entering = 0;    // a parked thread waits at the entry of a collective on this id
  int idle = 0;             // of those, waiting outside the library (after the cut)
  uint64_t incomplete = 0;  // send and collective requests not complete at the last drain
};

extern ProtocolState g_proto;

inline bool checkpoint_pending();

// One application thread makes MPI calls unless MPI_THREAD_MULTIPLE: then a plain load
// and store (no locked instruction) is enough; the agent only reads.
inline void bump(std::atomic<uint64_t>& a) {
  if (__builtin_expect(g_proto.thread_level == MPI_THREAD_MULTIPLE, 0))
    a.fetch_add(1, std::memory_order_relaxed);
  else
    a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}
inline void count_send(const CommInfo* c, int dest) {
  int w = c->world_of(dest);
  if (w >= 0) bump(g_proto.counters.sent[w]);
}
inline void count_recv(const CommInfo* c, int source) {
  int w = c->world_of(source);
  if (w >= 0) bump(g_proto.counters.recv[w]);
}

void counters_init(int world_size);

// The park loop (safe point with a checkpoint pending). at_collective: the thread is at
// the entry of a collective (or another call that only completes when all members make
// it); `entering`: the id of that communicator (0: not one the agents may release, e.g.
// MPI_Finalize).
void park_here(bool at_collective = false, uint64_t entering = 0);

// --- agent side ----------------------------------------------------------------------
struct LocalSnapshot {
  bool ready = false;  // parked at a safe point, not behind any target, nothing incomplete
  int parked = 0;
  uint64_t incomplete = 0;
  uint64_t entering = 0;
  std::vector<std::pair<uint64_t, uint64_t>> seqs;  // (comm id, collectives entered)
  std::vector<uint64_t> sent, recv;                 // per world rank
  uint64_t drained_messages = 0, drained_bytes = 0;
};
void agent_begin();  // raises the checkpoint flag
LocalSnapshot agent_snapshot();
void agent_set_targets(const std::unordered_map<uint64_t, uint64_t>& targets, bool any_behind);
// Tells parked threads to stay out of the library and waits until they all do. False if
// no application thread is parked (then there is nothing to cut).
bool agent_cut();
// Lets the threads go on (term: they end the job instead).
void agent_release(bool term);

// The drain step the park loop runs (drain.cpp): completes what can complete, receives
// in-flight messages into drain buffers. Returns the number of send and collective
// requests still incomplete. Called with g_proto.mu held, on an application thread.
uint64_t drain_step();

// Receive requests still posted in the library at the cut (their buffers hold no
// message: left out of the image).
struct PostedReceive {
  void* lo;
  size_t len;
};
std::vector<PostedReceive> posted_receives();

}  // namespace ocr::crcp

extern "C" int ocr_crcp_ckpt_pending;

namespace ocr::crcp {
inline bool checkpoint_pending() {
  return __atomic_load_n(&ocr_crcp_ckpt_pending, __ATOMIC_RELAXED) != 0;
}
}  // namespace ocr::crcp
