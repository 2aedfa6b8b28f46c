// The interface between the memory hints module and the runtime (agent, quiesce handler,
// image writer). The public side is include/ompi_cr/hints.h; docs/hints.md explains both.
//
// Order of a checkpoint, as the runtime drives it:
//   run_callbacks(CHECKPOINT) -> begin_checkpoint_barrier(timeout) -> quiesce all threads
//   -> collect_exclusions(arena, out) -> write the image -> release the threads
//   -> end_checkpoint_barrier() -> run_callbacks(CONTINUE)   (also when a step failed)
// and in a restored process, after the threads are back:
//   release the threads -> end_checkpoint_barrier() -> run_callbacks(RESTART)
#pragma once

#include <cstdint>
#include <memory_resource>
#include <vector>

#include "crs/image_format.h"
#include "ompi_cr/hints.h"

namespace ocr {

// Implemented by the runtime (src/crs/quiesce.cpp, also declared in crs/quiesce.h):
// re-sends the quiesce signal to the calling thread. A weak no-op fallback lives in
// src/hints/runtime_fallbacks.cpp for programs (unit tests) linked without the runtime.
void quiesce_redeliver_self();

namespace hints {

struct ExcludedRange {
  uint64_t start, end;  // page aligned, start < end
  uint32_t reason;      // OCR_SKIP_HINTED or OCR_SKIP_RECV_BUFFER
};

// Called by the agent with every application thread parked. Replaces the content of `out`
// with the whole pages to leave out: sorted, non-overlapping, page aligned, adjacent
// ranges of the same reason merged, always-include ranges and receive-buffer data already
// subtracted. Allocates only from `mr` (for `out` too when out uses mr). Takes the
// registry lock, which no parked thread holds (see tls_api_depth), and releases it before
// returning: call it before the pages are written, so the image never holds it locked.
void collect_exclusions(std::pmr::memory_resource* mr, std::pmr::vector<ExcludedRange>& out);

// Critical sections. The agent calls begin before parking threads: from then on new
// ompi_cr_cs_enter calls block (except nested ones) and begin waits until no section is
// open. Returns true when none is open; false after timeout_ms (<= 0: do not wait), in
// which case new entries are allowed again (end_checkpoint_barrier was done internally)
// and the checkpoint must fail with an error naming the timeout and
// open_critical_sections(). Not reentrant: one checkpoint at a time.
bool begin_checkpoint_barrier(int timeout_ms);
// Lets blocked cs_enter calls go on. Idempotent. Also called in a restored process (the
// image holds the barrier raised).
void end_checkpoint_barrier();
// Sections open right now, over all threads (for error messages).
uint32_t open_critical_sections();

// Runs the registered callbacks on the calling (agent) thread, which must not be an
// application thread and must not be inside a checkpoint with threads parked (callbacks
// may malloc, lock, print). CHECKPOINT: registration order; CONTINUE and RESTART: reverse
// registration order. Callbacks registered meanwhile are called from the next phase on;
// unregistered ones are not called any more. Other phase values are ignored.
void run_callbacks(ompi_cr_phase_t phase);

// Signal safety of the API calls: while a thread is inside any hints API call it must not
// be parked (it may hold the registry lock). The quiesce handler checks tls_api_depth and,
// when it is > 0, sets tls_quiesce_deferred = 1 and returns without parking. Every API
// function (but ompi_cr_strerror, which touches no shared state) raises tls_api_depth on entry; on
// exit it lowers it and, when it became 0 and tls_quiesce_deferred is set, clears it and calls
// ocr::quiesce_redeliver_self(). ompi_cr_cs_enter does not keep the depth raised while it blocks,
// nor does ompi_cr_checkpoint while the checkpoint runs. constinit: no TLS wrapper calls.
extern thread_local constinit int tls_api_depth __attribute__((tls_model("initial-exec")));
extern thread_local constinit int tls_quiesce_deferred __attribute__((tls_model("initial-exec")));

// Implemented by the runtime (src/crs/runtime.cpp); weak fallbacks in
// src/hints/runtime_fallbacks.cpp answer "no runtime" when it is not linked in.
//
// The explicit checkpoint behind ompi_cr_checkpoint(): requests a checkpoint of this
// process and waits until it is over and the CONTINUE / RESTART callbacks have run. It
// waits for a checkpoint that begins after the request (concurrent requests may share
// one); the end of a checkpoint that began earlier, or of the restore of an older image
// (in a restored process), must not wake it.
// Returns 0 (then *restarted is 0 in the continuing process, 1 in a restored one) or a
// negative errno: -ENOSYS no runtime, -ETIMEDOUT critical-section timeout, -ENOMEM,
// -EDEADLK / -EINVAL misuse, anything else = failed. Called with tls_api_depth == 0.
int runtime_request_checkpoint(int* restarted);
// True when the runtime is active in this process (agent thread running).
bool runtime_active();

// The MPI layer (libompi-cr-mpi.so) installs its safe point here for
// ompi_cr_checkpoint_point(); null outside MPI jobs.
using SafePointHook = void (*)();
void set_safe_point_hook(SafePointHook hook);

}  // namespace hints
}  // namespace ocr
