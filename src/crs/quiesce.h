// Thread quiescence: parks every application thread of this process in a signal handler
// so that the agent can save memory that nobody changes, and resumes them afterwards.
//
// Each parked thread records what the restorer needs to recreate it (thread pointer,
// robust list, sigaltstack, signal mask) and captures its callee-saved registers inside
// the handler. The kernel's signal frame, which holds all other registers and the
// extended (AVX) state, stays on the thread's stack and is therefore part of the image:
// in a restored process the thread resumes inside the handler, waits for the agent, and
// returns through rt_sigreturn on that frame.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "crs/image_format.h"

namespace ocr {

constexpr uint32_t kMaxThreadSlots = 1024;

struct ThreadSlot {
  ocr_thread_record rec;
};

// Installs the handler for `signo` (a real-time signal the application does not use).
int quiesce_install(int signo);

// Signals every thread of the process except `exempt` (runtime threads) and waits until
// all are parked, re-listing /proc/self/task until no new thread appears. Returns the
// number of parked threads, or -1 with a one-line reason in `err` (then no thread is left
// parked). Allocates nothing.
int quiesce_all(const pid_t* exempt, int nexempt, int timeout_ms, char* err, size_t errcap);

// Called when a thread leaves a hints API call during which it ignored the quiesce signal.
void quiesce_redeliver_self();

// Lets every parked thread continue (after a checkpoint, or in a restored process).
void quiesce_release();

// In a restored process: waits until every thread recorded at the checkpoint is back in
// its handler. Returns false on timeout.
bool quiesce_wait_restored(uint32_t expected, int timeout_ms);

// The records of the threads parked by the last quiesce_all.
const ThreadSlot* quiesce_slots(uint32_t* n);

// Fills the parts of a thread record that a thread can only read about itself.
void capture_thread_self(ocr_thread_record* rec);

}  // namespace ocr

extern "C" __attribute__((returns_twice)) int ocr_ctx_capture(ocr_jmp_context* ctx);
