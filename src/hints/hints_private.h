// Pieces shared by the files of the hints module and its tests, not by the runtime:
// the API-call scope that implements the quiesce deferral protocol, the per-thread
// "inside a callback" flag, and the critical-section entry points.
#pragma once

#include <atomic>

#include "hints/hints_internal.h"

namespace ocr::hints {

// True on the agent thread while run_callbacks is calling a callback: such a thread must
// not block in cs_enter nor request a checkpoint (it would wait for itself).
extern thread_local constinit bool tls_in_callback __attribute__((tls_model("initial-exec")));

// The deferral protocol of hints_internal.h. The quiesce handler runs on the same thread,
// so compiler fences (atomic_signal_fence) are the ordering needed: the raised depth must be
// in memory before any lock is taken, and stay raised until the lock is released.
inline void api_enter() noexcept {
  __atomic_store_n(&tls_api_depth, __atomic_load_n(&tls_api_depth, __ATOMIC_RELAXED) + 1,
                   __ATOMIC_RELAXED);
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

inline void api_leave() noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  const int depth = __atomic_load_n(&tls_api_depth, __ATOMIC_RELAXED) - 1;
  __atomic_store_n(&tls_api_depth, depth, __ATOMIC_RELAXED);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  // A quiesce signal that arrives from here on parks the thread directly (depth is 0); one
  // that arrived while the depth was raised left the flag set and is re-sent now.
  if (depth == 0 && __atomic_load_n(&tls_quiesce_deferred, __ATOMIC_RELAXED)) {
    __atomic_store_n(&tls_quiesce_deferred, 0, __ATOMIC_RELAXED);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    quiesce_redeliver_self();
  }
}

// RAII form for the API functions; suspend/resume for the blocking wait in cs_enter.
class ApiScope {
 public:
  ApiScope() noexcept { api_enter(); }
  ~ApiScope() {
    if (active_) api_leave();
  }
  ApiScope(const ApiScope&) = delete;
  ApiScope& operator=(const ApiScope&) = delete;
  void suspend() noexcept {
    if (active_) api_leave();
    active_ = false;
  }
  void resume() noexcept {
    if (!active_) api_enter();
    active_ = true;
  }

 private:
  bool active_ = true;
};

// critical_section.cpp
int cs_enter();
int cs_leave();
int cs_depth_self();   // sections the calling thread holds
void cs_fork_child();  // in a forked child: only the forking thread's sections remain

}  // namespace ocr::hints
