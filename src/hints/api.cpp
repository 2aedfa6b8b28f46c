// The public C API (include/ompi_cr/hints.h) and the runtime-facing entry points of
// hints_internal.h that need the process-wide registry.
//
// The registry is created on first use and never destroyed: hints may be registered from
// constructors that run before ours and removed from destructors or threads that run after
// exit() began. The agent only ever looks at an existing registry (it must not allocate
// while application threads are parked), so a process that never used the API costs
// nothing at checkpoint time.
#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <new>

#include "hints/hints_private.h"
#include "hints/registry.h"

namespace ocr::hints {

thread_local constinit int tls_api_depth __attribute__((tls_model("initial-exec"))) = 0;
thread_local constinit int tls_quiesce_deferred __attribute__((tls_model("initial-exec"))) = 0;
thread_local constinit bool tls_in_callback __attribute__((tls_model("initial-exec"))) = false;

namespace {

std::atomic<Registry*> g_registry{nullptr};

Registry& create_registry() {
  static Registry* const made = new Registry();  // thread-safe once; may throw bad_alloc
  g_registry.store(made, std::memory_order_release);
  return *made;
}

Registry& registry() {
  Registry* r = g_registry.load(std::memory_order_acquire);
  return r ? *r : create_registry();
}

Registry* existing_registry() {
  return g_registry.load(std::memory_order_acquire);
}

// fork(): the registry lock must not be held by a thread that the child does not have.
// The forking thread counts as inside an API call meanwhile, so it is not parked while it
// holds the lock; in the child no checkpoint is under way, so a deferred signal is dropped.
// The registry is created here if need be: otherwise another thread could create it and
// take its lock between this handler and the fork.
Registry* g_fork_locked = nullptr;

void fork_prepare() {
  api_enter();
  try {
    g_fork_locked = &registry();
    g_fork_locked->fork_prepare();
  } catch (const std::bad_alloc&) {
    g_fork_locked = nullptr;  // no registry: nothing to protect
  }
}
void fork_parent() {
  if (g_fork_locked) g_fork_locked->fork_parent();
  api_leave();
}
void fork_child() {
  if (g_fork_locked) g_fork_locked->fork_child();
  cs_fork_child();
  tls_quiesce_deferred = 0;
  tls_api_depth--;
}

__attribute__((constructor)) void hints_init() {
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

template <typename F>
int guarded(F&& f) {
  ApiScope scope;
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return OMPI_CR_ERR_NOMEM;
  }
}

}  // namespace

void collect_exclusions(std::pmr::memory_resource* mr, std::pmr::vector<ExcludedRange>& out) {
  if (Registry* r = existing_registry()) {
    r->collect(mr, out);
  } else {
    out.clear();
  }
}

void run_callbacks(ompi_cr_phase_t phase) {
  if (Registry* r = existing_registry()) r->run_callbacks(phase);
}

}  // namespace ocr::hints

using ocr::hints::guarded;
using ocr::hints::Registry;
using ocr::hints::registry;

namespace {
std::atomic<ocr::hints::SafePointHook> g_safe_point{nullptr};
}

namespace ocr::hints {
void set_safe_point_hook(SafePointHook hook) {
  g_safe_point.store(hook);
}
}  // namespace ocr::hints

extern "C" {

OMPI_CR_API const char* ompi_cr_strerror(int code) {
  switch (code) {
    case OMPI_CR_SUCCESS:
      return "success";
    case OMPI_CR_ERR_INVALID:
      return "invalid argument";
    case OMPI_CR_ERR_CONFLICT:
      return "range overlaps a registered receive buffer";
    case OMPI_CR_ERR_UNKNOWN_HANDLE:
      return "unknown handle";
    case OMPI_CR_ERR_NO_RUNTIME:
      return "not running under the ompi-cr runtime";
    case OMPI_CR_ERR_TIMEOUT:
      return "a critical section stayed open past the checkpoint timeout";
    case OMPI_CR_ERR_NOMEM:
      return "out of memory";
    case OMPI_CR_ERR_FAILED:
      return "checkpoint failed";
    default:
      return code > 0 ? "not an error (restarted)" : "unknown error code";
  }
}

OMPI_CR_API int ompi_cr_exclude(const void* addr, size_t len, ompi_cr_handle_t* handle) {
  return guarded([&] { return registry().add_range(Registry::kExclude, addr, len, handle); });
}

OMPI_CR_API int ompi_cr_include(const void* addr, size_t len, ompi_cr_handle_t* handle) {
  return guarded([&] { return registry().add_range(Registry::kInclude, addr, len, handle); });
}

OMPI_CR_API int ompi_cr_hint_remove(ompi_cr_handle_t handle) {
  return guarded([&] {
    Registry* r = ocr::hints::existing_registry();
    return r ? r->remove_hint(handle) : OMPI_CR_ERR_UNKNOWN_HANDLE;
  });
}

OMPI_CR_API int ompi_cr_recvbuf_register(const void* addr, size_t len, ompi_cr_handle_t* handle) {
  return guarded([&] { return registry().add_range(Registry::kRecv, addr, len, handle); });
}

OMPI_CR_API int ompi_cr_recvbuf_set_data(ompi_cr_handle_t handle, size_t offset, size_t len) {
  return guarded([&] {
    Registry* r = ocr::hints::existing_registry();
    return r ? r->recv_set_data(handle, offset, len) : OMPI_CR_ERR_UNKNOWN_HANDLE;
  });
}

OMPI_CR_API int ompi_cr_recvbuf_deregister(ompi_cr_handle_t handle) {
  return guarded([&] {
    Registry* r = ocr::hints::existing_registry();
    return r ? r->recv_deregister(handle) : OMPI_CR_ERR_UNKNOWN_HANDLE;
  });
}

OMPI_CR_API int ompi_cr_callback_register(ompi_cr_callback_fn fn, void* arg,
                                          ompi_cr_handle_t* handle) {
  return guarded([&] { return registry().callback_register(fn, arg, handle); });
}

OMPI_CR_API int ompi_cr_callback_unregister(ompi_cr_handle_t handle) {
  return guarded([&] {
    Registry* r = ocr::hints::existing_registry();
    return r ? r->callback_unregister(handle) : OMPI_CR_ERR_UNKNOWN_HANDLE;
  });
}

OMPI_CR_API int ompi_cr_cs_enter(void) {
  return ocr::hints::cs_enter();
}

OMPI_CR_API int ompi_cr_cs_leave(void) {
  return ocr::hints::cs_leave();
}

OMPI_CR_API int ompi_cr_checkpoint(void) {
  {
    ocr::hints::ApiScope scope;
    // The checkpoint would wait for this thread's own section, or for this very callback.
    if (ocr::hints::cs_depth_self() > 0 || ocr::hints::tls_in_callback) return OMPI_CR_ERR_INVALID;
  }
  // Called outside any API scope: this thread must be parkable while the checkpoint runs.
  int restarted = 0;
  const int rc = ocr::hints::runtime_request_checkpoint(&restarted);
  if (rc == 0) return restarted ? 1 : 0;
  switch (rc) {
    case -ENOSYS:
      return OMPI_CR_ERR_NO_RUNTIME;
    case -ETIMEDOUT:
      return OMPI_CR_ERR_TIMEOUT;
    case -ENOMEM:
      return OMPI_CR_ERR_NOMEM;
    case -EDEADLK:
    case -EINVAL:
      return OMPI_CR_ERR_INVALID;
    default:
      return OMPI_CR_ERR_FAILED;
  }
}

OMPI_CR_API void ompi_cr_checkpoint_point(void) {
  if (ocr::hints::SafePointHook hook = g_safe_point.load(std::memory_order_relaxed)) hook();
}

OMPI_CR_API int ompi_cr_active(void) {
  ocr::hints::ApiScope scope;
  return ocr::hints::runtime_active() ? 1 : 0;
}

}  // extern "C"
