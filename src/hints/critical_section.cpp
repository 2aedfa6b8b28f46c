// Critical sections and the checkpoint barrier (hints_internal.h, "Critical sections").
//
// Lock-free on the fast path: entering is one atomic increment plus a re-check of the
// barrier flag (a Dekker-style handshake with begin_checkpoint_barrier, which raises the
// flag and then reads the count; with sequentially consistent atomics one of the two sees
// the other). Waiting uses raw futexes because the agent needs a timeout and because a
// thread blocked here may be parked and restored: the loop re-checks after every wake-up.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>

#include "hints/hints_private.h"

namespace ocr::hints {
namespace {

struct CsState {
  std::atomic<uint32_t> open{0};         // sections open over all threads (futex word)
  std::atomic<uint32_t> barrier{0};      // 1 while a checkpoint holds new entries back
  std::atomic<uint32_t> barrier_gen{0};  // bumped at every end (futex word for cs_enter)
};
constinit CsState g_cs;
thread_local constinit int tls_cs_depth __attribute__((tls_model("initial-exec"))) = 0;

long futex(std::atomic<uint32_t>* addr, int op, uint32_t val, const timespec* ts) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), op, val, ts, nullptr, 0);
}

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// One section fewer; wakes a waiting checkpoint when it was the last.
void release_one() {
  if (g_cs.open.fetch_sub(1) == 1 && g_cs.barrier.load())
    futex(&g_cs.open, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
}

}  // namespace

int cs_enter() {
  ApiScope scope;
  // Nested sections and the agent's own callbacks never wait: the checkpoint waits for
  // them, so waiting here would deadlock.
  if (tls_cs_depth > 0 || tls_in_callback) {
    if (tls_cs_depth == INT_MAX) return OMPI_CR_ERR_INVALID;
    g_cs.open.fetch_add(1);
    tls_cs_depth++;
    return OMPI_CR_SUCCESS;
  }
  for (;;) {
    if (!g_cs.barrier.load()) {
      g_cs.open.fetch_add(1);
      if (!g_cs.barrier.load()) {
        tls_cs_depth = 1;
        return OMPI_CR_SUCCESS;
      }
      release_one();  // a checkpoint began in between: step back and wait for its end
    }
    const uint32_t gen = g_cs.barrier_gen.load();
    if (!g_cs.barrier.load()) continue;
    // Not inside an API call while blocked: the checkpoint parks this thread here.
    scope.suspend();
    futex(&g_cs.barrier_gen, FUTEX_WAIT_PRIVATE, gen, nullptr);
    scope.resume();
  }
}

int cs_leave() {
  ApiScope scope;
  if (tls_cs_depth <= 0) return OMPI_CR_ERR_INVALID;
  tls_cs_depth--;
  release_one();
  return OMPI_CR_SUCCESS;
}

int cs_depth_self() {
  return tls_cs_depth;
}

void cs_fork_child() {
  g_cs.open.store(static_cast<uint32_t>(tls_cs_depth));
  g_cs.barrier.store(0);
  g_cs.barrier_gen.fetch_add(1);
}

bool begin_checkpoint_barrier(int timeout_ms) {
  g_cs.barrier.store(1);
  const int64_t deadline = now_ns() + int64_t{timeout_ms > 0 ? timeout_ms : 0} * 1000000;
  for (;;) {
    const uint32_t open = g_cs.open.load();
    if (open == 0) return true;
    const int64_t left = deadline - now_ns();
    if (left <= 0) {
      end_checkpoint_barrier();
      return false;
    }
    timespec ts{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
    futex(&g_cs.open, FUTEX_WAIT_PRIVATE, open, &ts);
  }
}

void end_checkpoint_barrier() {
  g_cs.barrier.store(0);
  g_cs.barrier_gen.fetch_add(1);
  futex(&g_cs.barrier_gen, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
}

uint32_t open_critical_sections() {
  return g_cs.open.load();
}

}  // namespace ocr::hints
