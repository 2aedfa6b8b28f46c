// The hints module's contract with the runtime (hints_internal.h), with test versions of
// the runtime hooks: the quiesce deferral protocol (tls_api_depth / tls_quiesce_deferred /
// quiesce_redeliver_self) exercised by real signals, a thread blocked in cs_enter being
// parkable, and the result mapping of ompi_cr_checkpoint().
//
// The strong definitions below replace the weak fallbacks of runtime_fallbacks.cpp, exactly
// as the runtime's do in libompi-cr.so.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "hints/hints_internal.h"
#include "ompi_cr/hints.h"

namespace {
std::atomic<int> g_redelivered{0};
std::atomic<int> g_redeliver_signal{0};  // 0: only count
std::atomic<int> g_request_calls{0};
int g_request_rc = 0, g_request_restarted = 0, g_depth_in_request = -1;
std::atomic<bool> g_active{false};
int g_depth_in_active = -1;

pid_t gettid_() {
  return static_cast<pid_t>(syscall(SYS_gettid));
}
}  // namespace

namespace ocr {
void quiesce_redeliver_self() {
  g_redelivered++;
  if (int s = g_redeliver_signal.load()) syscall(SYS_tgkill, getpid(), gettid_(), s);
}
namespace hints {
int runtime_request_checkpoint(int* restarted) {
  g_request_calls++;
  g_depth_in_request = tls_api_depth;
  *restarted = g_request_restarted;
  return g_request_rc;
}
bool runtime_active() {
  g_depth_in_active = tls_api_depth;
  return g_active.load();
}
}  // namespace hints
}  // namespace ocr

namespace {

using ocr::hints::tls_api_depth;
using ocr::hints::tls_quiesce_deferred;
constexpr size_t P = OCR_PAGE_SIZE;

TEST(HintsProtocol, DepthIsRaisedOnlyInsideCalls) {
  EXPECT_EQ(tls_api_depth, 0);
  g_active = true;
  EXPECT_EQ(ompi_cr_active(), 1);
  EXPECT_EQ(g_depth_in_active, 1);
  g_active = false;
  EXPECT_EQ(ompi_cr_active(), 0);
  EXPECT_EQ(tls_api_depth, 0);
}

TEST(HintsProtocol, DeferredQuiesceIsRedeliveredWhenTheCallEnds) {
  static char buf[3 * P];
  ompi_cr_handle_t h = 0, r = 0, c = 0;
  auto cb = [](ompi_cr_phase_t, void*) {};
  // Every API function that takes the scope, successful or not.
  const std::vector<std::function<int()>> calls = {
      [&] { return ompi_cr_exclude(buf, P, &h); },
      [&] { return ompi_cr_hint_remove(h); },
      [&] { return ompi_cr_include(buf, P, &h); },
      [&] { return ompi_cr_hint_remove(h); },
      [&] { return ompi_cr_exclude(nullptr, P, &h); },
      [&] { return ompi_cr_recvbuf_register(buf, P, &r); },
      [&] { return ompi_cr_recvbuf_set_data(r, 0, 10); },
      [&] { return ompi_cr_recvbuf_deregister(r); },
      [&] { return ompi_cr_recvbuf_deregister(r); },
      [&] { return ompi_cr_callback_register(cb, nullptr, &c); },
      [&] { return ompi_cr_callback_unregister(c); },
      [&] { return ompi_cr_cs_enter(); },
      [&] { return ompi_cr_cs_leave(); },
      [&] { return ompi_cr_cs_leave(); },
      [&] { return ompi_cr_active(); },
  };
  for (size_t k = 0; k < calls.size(); k++) {
    const int before = g_redelivered.load();
    tls_quiesce_deferred = 1;  // as if the quiesce handler had run inside the call
    calls[k]();
    EXPECT_EQ(g_redelivered.load(), before + 1) << "call " << k;
    EXPECT_EQ(tls_quiesce_deferred, 0) << "call " << k;
    EXPECT_EQ(tls_api_depth, 0) << "call " << k;
  }
  // Nothing deferred: nothing re-sent.
  const int before = g_redelivered.load();
  ASSERT_EQ(ompi_cr_exclude(buf, P, &h), OMPI_CR_SUCCESS);
  ASSERT_EQ(ompi_cr_hint_remove(h), OMPI_CR_SUCCESS);
  EXPECT_EQ(g_redelivered.load(), before);
}

// --- real signals -----------------------------------------------------------------

std::atomic<int> g_direct{0}, g_deferred{0}, g_last_depth{-1};
std::atomic<bool> g_api_in_handler{false};
char g_handler_buf[2 * P];

// What the runtime's quiesce handler does, minus the parking: defer inside an API call;
// otherwise "park" -- here: prove the registry lock is free by taking it.
void fake_quiesce_handler(int) {
  const int depth = tls_api_depth;
  g_last_depth = depth;
  if (depth > 0) {
    tls_quiesce_deferred = 1;
    g_deferred++;
    return;
  }
  if (g_api_in_handler.load()) {
    ompi_cr_handle_t h;
    if (ompi_cr_exclude(g_handler_buf, P, &h) == OMPI_CR_SUCCESS) ompi_cr_hint_remove(h);
  }
  g_direct++;
}

class HintsSignals : public ::testing::Test {
 protected:
  void SetUp() override {
    sig_ = SIGRTMIN + 2;  // real-time: signals queue, none is lost
    struct sigaction sa {};
    sa.sa_handler = fake_quiesce_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ASSERT_EQ(sigaction(sig_, &sa, &old_), 0);
    g_redeliver_signal = sig_;
    g_direct = g_deferred = 0;
    g_redelivered = 0;
  }
  void TearDown() override {
    g_redeliver_signal = 0;
    g_api_in_handler = false;
    sigaction(sig_, &old_, nullptr);
  }
  // Waits until `counter` passes `value`; gives up the whole process on a hang (a broken
  // protocol deadlocks inside the handler, and joining that thread would hang the test).
  static void wait_above(const std::atomic<int>& counter, int value, const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (counter.load() <= value) {
      if (std::chrono::steady_clock::now() > deadline) {
        fprintf(stderr, "hang: %s\n", what);
        std::_Exit(2);
      }
      std::this_thread::yield();
    }
  }
  int sig_ = 0;
  struct sigaction old_ {};
};

TEST_F(HintsSignals, EveryQuiesceSignalIsHandledOutsideTheApi) {
  static char bufs[8 * P];
  ompi_cr_handle_t warm;
  ASSERT_EQ(ompi_cr_exclude(bufs, P, &warm), OMPI_CR_SUCCESS);  // create the registry
  ASSERT_EQ(ompi_cr_hint_remove(warm), OMPI_CR_SUCCESS);
  g_api_in_handler = true;
  std::atomic<bool> stop{false};
  std::atomic<pid_t> tid{0};
  std::atomic<int> errors{0};
  std::thread hammer([&] {
    tid = gettid_();
    for (unsigned k = 0; !stop.load(); k++) {
      ompi_cr_handle_t h, e;
      char* b = bufs + (k % 4) * 2 * P;
      if (ompi_cr_recvbuf_register(b, 2 * P, &h) != OMPI_CR_SUCCESS) errors++;
      if (ompi_cr_recvbuf_set_data(h, 0, k % 100) != OMPI_CR_SUCCESS) errors++;
      if (ompi_cr_exclude(b, P, &e) != OMPI_CR_SUCCESS) errors++;
      if (ompi_cr_hint_remove(e) != OMPI_CR_SUCCESS) errors++;
      if (ompi_cr_recvbuf_deregister(h) != OMPI_CR_SUCCESS) errors++;
    }
  });
  while (!tid.load()) std::this_thread::yield();
  constexpr int kSignals = 1000;
  for (int i = 0; i < kSignals; i++) {
    const int before = g_direct.load();
    ASSERT_EQ(syscall(SYS_tgkill, getpid(), tid.load(), sig_), 0);
    wait_above(g_direct, before, "a quiesce signal was never handled outside an API call");
  }
  stop = true;
  hammer.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(g_direct.load(), kSignals);
  EXPECT_EQ(g_redelivered.load(), g_deferred.load()) << "every deferral is re-sent once";
  EXPECT_GT(g_deferred.load(), 0) << "no signal landed inside an API call: test too weak";
  printf("%d signals, %d deferred and re-sent\n", kSignals, g_deferred.load());
}

// The first field of /proc/self/task/TID/syscall is the number of the system call the
// thread is blocked in.
bool blocked_in_futex(pid_t tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/syscall");
  std::string nr;
  f >> nr;
  return nr == std::to_string(SYS_futex);
}

TEST_F(HintsSignals, ThreadBlockedInCsEnterIsNotInsideTheApi) {
  ASSERT_TRUE(ocr::hints::begin_checkpoint_barrier(0));
  std::atomic<pid_t> tid{0};
  std::atomic<bool> entered{false};
  std::thread app([&] {
    tid = gettid_();
    EXPECT_EQ(ompi_cr_cs_enter(), OMPI_CR_SUCCESS);
    entered = true;
    EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
  });
  while (!tid.load() || !blocked_in_futex(tid.load())) std::this_thread::yield();
  ASSERT_FALSE(entered.load());
  ASSERT_EQ(syscall(SYS_tgkill, getpid(), tid.load(), sig_), 0);
  wait_above(g_direct, 0, "signal to a thread blocked in cs_enter");
  EXPECT_EQ(g_last_depth.load(), 0);
  EXPECT_EQ(g_deferred.load(), 0);
  EXPECT_FALSE(entered.load());  // the signal did not let it through the barrier
  ocr::hints::end_checkpoint_barrier();
  app.join();
  EXPECT_TRUE(entered.load());
}

// --- explicit checkpoint ------------------------------------------------------------

TEST(HintsCheckpoint, ResultMapping) {
  struct Case {
    int rc, restarted, want;
  };
  const Case cases[] = {
      {0, 0, 0},
      {0, 1, 1},
      {-ENOSYS, 0, OMPI_CR_ERR_NO_RUNTIME},
      {-ETIMEDOUT, 0, OMPI_CR_ERR_TIMEOUT},
      {-ENOMEM, 0, OMPI_CR_ERR_NOMEM},
      {-EDEADLK, 0, OMPI_CR_ERR_INVALID},
      {-EINVAL, 0, OMPI_CR_ERR_INVALID},
      {-EIO, 0, OMPI_CR_ERR_FAILED},
      {-EBUSY, 0, OMPI_CR_ERR_FAILED},
      {7, 0, OMPI_CR_ERR_FAILED},
  };
  for (const Case& c : cases) {
    g_request_rc = c.rc;
    g_request_restarted = c.restarted;
    g_depth_in_request = -1;
    EXPECT_EQ(ompi_cr_checkpoint(), c.want) << "rc " << c.rc;
    // The caller must be parkable while its checkpoint runs.
    EXPECT_EQ(g_depth_in_request, 0) << "rc " << c.rc;
  }
  EXPECT_EQ(tls_api_depth, 0);
}

TEST(HintsCheckpoint, RefusedInsideACriticalSection) {
  g_request_rc = 0;
  const int calls = g_request_calls.load();
  ASSERT_EQ(ompi_cr_cs_enter(), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_checkpoint(), OMPI_CR_ERR_INVALID);
  ASSERT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
  EXPECT_EQ(g_request_calls.load(), calls);
  EXPECT_EQ(ompi_cr_checkpoint(), 0);
  EXPECT_EQ(g_request_calls.load(), calls + 1);
}

}  // namespace
