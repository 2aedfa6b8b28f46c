// Weak stand-ins for the runtime hooks the hints module calls (hints_internal.h). The
// runtime's strong definitions in libompi-cr.so (quiesce.cpp, runtime.cpp) replace them at
// link time; programs linked with the hints objects alone (unit tests, benchmarks) get
// "no runtime" behaviour. They live in their own file so that no caller can inline them.
#include <cerrno>

#include "hints/hints_internal.h"

namespace ocr {

// Without the runtime no quiesce signal is ever deferred, so there is nothing to re-send.
__attribute__((weak)) void quiesce_redeliver_self() {}

namespace hints {

__attribute__((weak)) int runtime_request_checkpoint(int* restarted) {
  if (restarted) *restarted = 0;
  return -ENOSYS;
}

__attribute__((weak)) bool runtime_active() {
  return false;
}

}  // namespace hints
}  // namespace ocr
