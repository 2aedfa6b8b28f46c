// The public C API of the memory hints (include/ompi_cr/hints.h) on the process-wide
// registry, without the runtime (the weak fallbacks of runtime_fallbacks.cpp are in use):
// every documented error code, thread safety under concurrent registration with a
// concurrent checkpoint-time reader, callback order and phases, and the critical-section
// barrier the agent uses.
//
// Ordering checks use a shared sequence counter, never elapsed time: a step that must
// wait for another records its position after the one it waits for. The short sleeps only
// give a wrong implementation the chance to run ahead.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory_resource>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hints/hints_internal.h"
#include "ompi_cr/hints.h"

namespace {

constexpr size_t P = OCR_PAGE_SIZE;

// Page-aligned memory the tests register (never touched: hints are only addresses).
struct Mapping {
  explicit Mapping(size_t pages) : len(pages * P) {
    p = static_cast<char*>(mmap(nullptr, len, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  }
  ~Mapping() { munmap(p, len); }
  char* p;
  size_t len;
};

std::vector<ocr::hints::ExcludedRange> exclusions() {
  std::pmr::monotonic_buffer_resource mr;
  std::pmr::vector<ocr::hints::ExcludedRange> out(&mr);
  ocr::hints::collect_exclusions(&mr, out);
  return {out.begin(), out.end()};
}

void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

TEST(HintsApi, StrerrorNamesEveryCode) {
  std::set<std::string> seen;
  for (int c :
       {OMPI_CR_SUCCESS, OMPI_CR_ERR_INVALID, OMPI_CR_ERR_CONFLICT, OMPI_CR_ERR_UNKNOWN_HANDLE,
        OMPI_CR_ERR_NO_RUNTIME, OMPI_CR_ERR_TIMEOUT, OMPI_CR_ERR_NOMEM, OMPI_CR_ERR_FAILED}) {
    ASSERT_NE(ompi_cr_strerror(c), nullptr);
    seen.insert(ompi_cr_strerror(c));
  }
  EXPECT_EQ(seen.size(), 8u);
  EXPECT_STREQ(ompi_cr_strerror(-1000), "unknown error code");
}

TEST(HintsApi, ExcludeIncludeRemove) {
  Mapping m(16);
  ompi_cr_handle_t e, i;
  ASSERT_EQ(ompi_cr_exclude(m.p + 100, 10 * P, &e), OMPI_CR_SUCCESS);
  ASSERT_EQ(ompi_cr_include(m.p + 4 * P, 1, &i), OMPI_CR_SUCCESS);
  auto ex = exclusions();
  const uint64_t b = reinterpret_cast<uint64_t>(m.p);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].start, b + P);
  EXPECT_EQ(ex[0].end, b + 4 * P);
  EXPECT_EQ(ex[1].start, b + 5 * P);
  EXPECT_EQ(ex[1].end, b + 10 * P);
  EXPECT_EQ(ex[0].reason, static_cast<uint32_t>(OCR_SKIP_HINTED));
  EXPECT_EQ(ompi_cr_hint_remove(i), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_hint_remove(e), OMPI_CR_SUCCESS);
  EXPECT_TRUE(exclusions().empty());
}

TEST(HintsApi, RangeErrors) {
  Mapping m(4);
  ompi_cr_handle_t h = 42;
  using Fn = int (*)(const void*, size_t, ompi_cr_handle_t*);
  for (Fn f : {Fn{ompi_cr_exclude}, Fn{ompi_cr_include}, Fn{ompi_cr_recvbuf_register}}) {
    EXPECT_EQ(f(nullptr, P, &h), OMPI_CR_ERR_INVALID);
    EXPECT_EQ(f(m.p, 0, &h), OMPI_CR_ERR_INVALID);
    EXPECT_EQ(f(m.p, P, nullptr), OMPI_CR_ERR_INVALID);
    EXPECT_EQ(f(reinterpret_cast<void*>(~uintptr_t{0} - 5), 10, &h), OMPI_CR_ERR_INVALID);
    EXPECT_EQ(f(m.p, SIZE_MAX, &h), OMPI_CR_ERR_INVALID);
  }
  EXPECT_EQ(h, 42);
}

TEST(HintsApi, ReceiveBufferErrors) {
  Mapping m(8);
  ompi_cr_handle_t a, b, e;
  ASSERT_EQ(ompi_cr_recvbuf_register(m.p + P, 2 * P, &a), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_recvbuf_register(m.p + 2 * P, 4 * P, &b), OMPI_CR_ERR_CONFLICT);
  EXPECT_EQ(ompi_cr_recvbuf_register(m.p, P + 1, &b), OMPI_CR_ERR_CONFLICT);
  EXPECT_EQ(ompi_cr_recvbuf_register(m.p + 3 * P, P, &b), OMPI_CR_SUCCESS);  // touching
  EXPECT_EQ(ompi_cr_exclude(m.p, 8 * P, &e), OMPI_CR_SUCCESS);               // never a conflict
  EXPECT_EQ(ompi_cr_recvbuf_set_data(a, 0, 2 * P + 1), OMPI_CR_ERR_INVALID);
  EXPECT_EQ(ompi_cr_recvbuf_set_data(a, 2 * P, 1), OMPI_CR_ERR_INVALID);
  EXPECT_EQ(ompi_cr_recvbuf_set_data(a, 10, 20), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_recvbuf_set_data(e, 0, 1), OMPI_CR_ERR_UNKNOWN_HANDLE);
  EXPECT_EQ(ompi_cr_recvbuf_deregister(e), OMPI_CR_ERR_UNKNOWN_HANDLE);
  EXPECT_EQ(ompi_cr_hint_remove(a), OMPI_CR_ERR_UNKNOWN_HANDLE);
  EXPECT_EQ(ompi_cr_recvbuf_deregister(a), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_recvbuf_deregister(a), OMPI_CR_ERR_UNKNOWN_HANDLE);
  EXPECT_EQ(ompi_cr_recvbuf_set_data(a, 0, 0), OMPI_CR_ERR_UNKNOWN_HANDLE);
  EXPECT_EQ(ompi_cr_recvbuf_deregister(b), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_hint_remove(e), OMPI_CR_SUCCESS);
  for (int bad : {0, -3, 99999999}) {
    EXPECT_EQ(ompi_cr_hint_remove(bad), OMPI_CR_ERR_UNKNOWN_HANDLE);
    EXPECT_EQ(ompi_cr_recvbuf_set_data(bad, 0, 0), OMPI_CR_ERR_UNKNOWN_HANDLE);
    EXPECT_EQ(ompi_cr_recvbuf_deregister(bad), OMPI_CR_ERR_UNKNOWN_HANDLE);
    EXPECT_EQ(ompi_cr_callback_unregister(bad), OMPI_CR_ERR_UNKNOWN_HANDLE);
  }
  EXPECT_TRUE(exclusions().empty());
}

TEST(HintsApi, CallbackErrors) {
  ompi_cr_handle_t h;
  EXPECT_EQ(ompi_cr_callback_register(nullptr, nullptr, &h), OMPI_CR_ERR_INVALID);
  EXPECT_EQ(ompi_cr_callback_register([](ompi_cr_phase_t, void*) {}, nullptr, nullptr),
            OMPI_CR_ERR_INVALID);
  ASSERT_EQ(ompi_cr_callback_register([](ompi_cr_phase_t, void*) {}, nullptr, &h), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_hint_remove(h), OMPI_CR_ERR_UNKNOWN_HANDLE);
  EXPECT_EQ(ompi_cr_callback_unregister(h), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_callback_unregister(h), OMPI_CR_ERR_UNKNOWN_HANDLE);
}

TEST(HintsApi, WithoutRuntime) {
  EXPECT_EQ(ompi_cr_active(), 0);
  EXPECT_EQ(ompi_cr_checkpoint(), OMPI_CR_ERR_NO_RUNTIME);
}

TEST(HintsApi, CriticalSectionCalls) {
  EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_ERR_INVALID);
  ASSERT_EQ(ompi_cr_cs_enter(), OMPI_CR_SUCCESS);
  ASSERT_EQ(ompi_cr_cs_enter(), OMPI_CR_SUCCESS);  // nests
  EXPECT_EQ(ocr::hints::open_critical_sections(), 2u);
  EXPECT_EQ(ompi_cr_checkpoint(), OMPI_CR_ERR_INVALID);  // would wait for itself
  EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_ERR_INVALID);
  EXPECT_EQ(ocr::hints::open_critical_sections(), 0u);
  // Sections belong to threads: another thread cannot leave this thread's section.
  ASSERT_EQ(ompi_cr_cs_enter(), OMPI_CR_SUCCESS);
  int other = 0;
  std::thread([&] { other = ompi_cr_cs_leave(); }).join();
  EXPECT_EQ(other, OMPI_CR_ERR_INVALID);
  EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
}

// ------------------------------------------------------------ thread safety ----

TEST(HintsApi, ConcurrentRegistrationWithReader) {
  constexpr int kThreads = 4, kRounds = 20000, kHeld = 64;
  Mapping m(kThreads * 2 * kHeld + 16);
  std::atomic<bool> stop{false};
  std::atomic<int> bad_results{0}, reader_runs{0}, shared_owners{0}, shared_conflicts{0};
  std::atomic<int> errors{0};
  char* shared = m.p + kThreads * 2 * kHeld * P;  // every thread competes for this buffer

  // The checkpoint-side reader: every snapshot must be well formed.
  std::thread reader([&] {
    alignas(64) static unsigned char buf[4 << 20];
    while (!stop.load()) {
      std::pmr::monotonic_buffer_resource mr(buf, sizeof buf, std::pmr::null_memory_resource());
      std::pmr::vector<ocr::hints::ExcludedRange> out(&mr);
      ocr::hints::collect_exclusions(&mr, out);
      for (size_t k = 0; k < out.size(); k++) {
        bool ok = out[k].start % P == 0 && out[k].end % P == 0 && out[k].start < out[k].end &&
                  (k == 0 || out[k - 1].end <= out[k].start);
        if (!ok) bad_results++;
      }
      reader_runs++;
    }
  });

  std::mutex handles_mu;
  std::vector<ompi_cr_handle_t> all_live;
  std::atomic<int> arrived{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; t++) {
    workers.emplace_back([&, t] {
      char* mine = m.p + t * 2 * kHeld * P;
      // Phase 1: hold kHeld registrations of mixed kinds, publish the handles.
      std::vector<ompi_cr_handle_t> held;
      for (int k = 0; k < kHeld; k++) {
        ompi_cr_handle_t h;
        int rc = (k % 2) ? ompi_cr_recvbuf_register(mine + 2 * k * P, P, &h)
                         : ompi_cr_exclude(mine + 2 * k * P, P, &h);
        if (rc != OMPI_CR_SUCCESS) errors++;
        held.push_back(h);
      }
      {
        std::lock_guard<std::mutex> lock(handles_mu);
        all_live.insert(all_live.end(), held.begin(), held.end());
      }
      arrived++;
      while (arrived.load() < kThreads) std::this_thread::yield();
      // Phase 2: the per-message pattern, plus a contended shared buffer.
      for (int r = 0; r < kRounds; r++) {
        ompi_cr_handle_t h;
        char* buf = mine + (2 * (r % kHeld) + 1) * P;  // the gaps between held ranges
        if (ompi_cr_recvbuf_register(buf, P, &h) != OMPI_CR_SUCCESS) errors++;
        if (r % 3 == 0 && ompi_cr_recvbuf_set_data(h, 0, 100) != OMPI_CR_SUCCESS) errors++;
        if (ompi_cr_recvbuf_deregister(h) != OMPI_CR_SUCCESS) errors++;
        if (r % 64 == 0) {
          int rc = ompi_cr_recvbuf_register(shared, P, &h);
          if (rc == OMPI_CR_SUCCESS) {
            if (shared_owners.fetch_add(1) != 0) errors++;  // two owners at once
            shared_owners.fetch_sub(1);
            if (ompi_cr_recvbuf_deregister(h) != OMPI_CR_SUCCESS) errors++;
          } else if (rc == OMPI_CR_ERR_CONFLICT) {
            shared_conflicts++;
          } else {
            errors++;
          }
        }
      }
      for (ompi_cr_handle_t h : held) {
        int rc = ompi_cr_hint_remove(h);
        if (rc == OMPI_CR_ERR_UNKNOWN_HANDLE) rc = ompi_cr_recvbuf_deregister(h);
        if (rc != OMPI_CR_SUCCESS) errors++;
      }
    });
  }
  for (std::thread& w : workers) w.join();
  stop = true;
  reader.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(bad_results.load(), 0);
  EXPECT_GT(reader_runs.load(), 0);
  std::set<ompi_cr_handle_t> unique(all_live.begin(), all_live.end());
  EXPECT_EQ(unique.size(), all_live.size()) << "two live registrations shared a handle";
  EXPECT_TRUE(exclusions().empty());
}

TEST(HintsApi, ForkChildKeepsRegistrationsAndWorks) {
  Mapping m(64);
  ompi_cr_handle_t e;
  ASSERT_EQ(ompi_cr_exclude(m.p, 4 * P, &e), OMPI_CR_SUCCESS);
  std::atomic<bool> stop{false}, in{false};
  // Another thread holds a section and hammers the registry while this one forks: the child
  // must neither inherit a locked registry nor that thread's section.
  std::thread other([&] {
    ompi_cr_cs_enter();
    in = true;
    for (unsigned k = 0; !stop.load(); k++) {
      ompi_cr_handle_t h;
      if (ompi_cr_recvbuf_register(m.p + (8 + k % 32) * P, P, &h) == OMPI_CR_SUCCESS)
        ompi_cr_recvbuf_deregister(h);
    }
    ompi_cr_cs_leave();
  });
  while (!in.load()) std::this_thread::yield();
  ASSERT_EQ(ompi_cr_cs_enter(), OMPI_CR_SUCCESS);
  for (int round = 0; round < 20; round++) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      alarm(20);  // a registry inherited locked would hang the child: fail instead
      bool ok = ocr::hints::open_critical_sections() == 1;  // only this thread's
      bool found = false;
      for (const auto& r : exclusions())
        found |= r.start == reinterpret_cast<uint64_t>(m.p) && r.end - r.start == 4 * P;
      ok = ok && found;
      ompi_cr_handle_t h;
      ok = ok && ompi_cr_exclude(m.p + 4 * P, P, &h) == OMPI_CR_SUCCESS;
      ok = ok && ompi_cr_hint_remove(h) == OMPI_CR_SUCCESS;
      ok = ok && !ocr::hints::begin_checkpoint_barrier(0);
      ok = ok && ompi_cr_cs_leave() == OMPI_CR_SUCCESS;
      ok = ok && ocr::hints::begin_checkpoint_barrier(0);
      ocr::hints::end_checkpoint_barrier();
      _exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "round " << round;
  }
  stop = true;
  other.join();
  EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_hint_remove(e), OMPI_CR_SUCCESS);
}

// -------------------------------------------------------------- callbacks ----

struct Trace {
  std::mutex mu;
  std::vector<std::string> lines;
  void add(const std::string& s) {
    std::lock_guard<std::mutex> lock(mu);
    lines.push_back(s);
  }
  std::vector<std::string> take() {
    std::lock_guard<std::mutex> lock(mu);
    return std::exchange(lines, {});
  }
};
Trace g_trace;

const char* phase_name(ompi_cr_phase_t p) {
  switch (p) {
    case OMPI_CR_PHASE_CHECKPOINT:
      return "CHECKPOINT";
    case OMPI_CR_PHASE_CONTINUE:
      return "CONTINUE";
    case OMPI_CR_PHASE_RESTART:
      return "RESTART";
  }
  return "BAD";
}

void record(ompi_cr_phase_t phase, void* arg) {
  g_trace.add(std::string(static_cast<const char*>(arg)) + " " + phase_name(phase));
}

using Lines = std::vector<std::string>;

TEST(HintsCallbacks, OrderAndPhases) {
  ompi_cr_handle_t a, b, c;
  ASSERT_EQ(ompi_cr_callback_register(record, const_cast<char*>("a"), &a), OMPI_CR_SUCCESS);
  ASSERT_EQ(ompi_cr_callback_register(record, const_cast<char*>("b"), &b), OMPI_CR_SUCCESS);
  ASSERT_EQ(ompi_cr_callback_register(record, const_cast<char*>("c"), &c), OMPI_CR_SUCCESS);
  ocr::hints::run_callbacks(OMPI_CR_PHASE_CHECKPOINT);
  EXPECT_EQ(g_trace.take(), (Lines{"a CHECKPOINT", "b CHECKPOINT", "c CHECKPOINT"}));
  ocr::hints::run_callbacks(OMPI_CR_PHASE_CONTINUE);
  EXPECT_EQ(g_trace.take(), (Lines{"c CONTINUE", "b CONTINUE", "a CONTINUE"}));
  ocr::hints::run_callbacks(OMPI_CR_PHASE_RESTART);
  EXPECT_EQ(g_trace.take(), (Lines{"c RESTART", "b RESTART", "a RESTART"}));
  ocr::hints::run_callbacks(static_cast<ompi_cr_phase_t>(7));  // ignored
  EXPECT_TRUE(g_trace.take().empty());
  ASSERT_EQ(ompi_cr_callback_unregister(b), OMPI_CR_SUCCESS);
  ocr::hints::run_callbacks(OMPI_CR_PHASE_CHECKPOINT);
  EXPECT_EQ(g_trace.take(), (Lines{"a CHECKPOINT", "c CHECKPOINT"}));
  // Re-registering puts a callback last.
  ASSERT_EQ(ompi_cr_callback_register(record, const_cast<char*>("b"), &b), OMPI_CR_SUCCESS);
  ocr::hints::run_callbacks(OMPI_CR_PHASE_CONTINUE);
  EXPECT_EQ(g_trace.take(), (Lines{"b CONTINUE", "c CONTINUE", "a CONTINUE"}));
  for (ompi_cr_handle_t h : {a, b, c}) EXPECT_EQ(ompi_cr_callback_unregister(h), OMPI_CR_SUCCESS);
  ocr::hints::run_callbacks(OMPI_CR_PHASE_CHECKPOINT);
  EXPECT_TRUE(g_trace.take().empty());
}

// A callback that (un)registers others and itself, uses the other API calls, and tries
// the calls that must refuse inside a callback.
ompi_cr_handle_t g_self, g_victim, g_added;
void meddler(ompi_cr_phase_t phase, void*) {
  g_trace.add(std::string("meddler ") + phase_name(phase));
  if (phase == OMPI_CR_PHASE_CHECKPOINT) {
    EXPECT_EQ(ompi_cr_callback_register(record, const_cast<char*>("added"), &g_added),
              OMPI_CR_SUCCESS);
    EXPECT_EQ(ompi_cr_callback_unregister(g_victim), OMPI_CR_SUCCESS);
    EXPECT_EQ(ompi_cr_checkpoint(), OMPI_CR_ERR_INVALID);
    EXPECT_EQ(ompi_cr_cs_enter(), OMPI_CR_SUCCESS);
    EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
  } else {
    EXPECT_EQ(ompi_cr_callback_unregister(g_self), OMPI_CR_SUCCESS);  // no self-deadlock
  }
}

TEST(HintsCallbacks, ChangesDuringAPhase) {
  ASSERT_EQ(ompi_cr_callback_register(meddler, nullptr, &g_self), OMPI_CR_SUCCESS);
  ASSERT_EQ(ompi_cr_callback_register(record, const_cast<char*>("victim"), &g_victim),
            OMPI_CR_SUCCESS);
  ocr::hints::run_callbacks(OMPI_CR_PHASE_CHECKPOINT);
  // victim was unregistered before its turn; added waits for the next phase.
  EXPECT_EQ(g_trace.take(), (Lines{"meddler CHECKPOINT"}));
  ocr::hints::run_callbacks(OMPI_CR_PHASE_CONTINUE);
  EXPECT_EQ(g_trace.take(), (Lines{"added CONTINUE", "meddler CONTINUE"}));
  ocr::hints::run_callbacks(OMPI_CR_PHASE_RESTART);
  EXPECT_EQ(g_trace.take(), (Lines{"added RESTART"}));
  EXPECT_EQ(ompi_cr_callback_unregister(g_added), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_callback_unregister(g_self), OMPI_CR_ERR_UNKNOWN_HANDLE);
}

std::atomic<int> g_seq{0};
std::atomic<bool> g_cb_started{false}, g_cb_release{false};
int g_cb_returned_at = -1;
void slow(ompi_cr_phase_t, void*) {
  g_cb_started = true;
  while (!g_cb_release.load()) std::this_thread::yield();
  g_cb_returned_at = g_seq++;
}

TEST(HintsCallbacks, UnregisterWaitsForARunningCallback) {
  ompi_cr_handle_t h;
  ASSERT_EQ(ompi_cr_callback_register(slow, nullptr, &h), OMPI_CR_SUCCESS);
  std::thread agent([] { ocr::hints::run_callbacks(OMPI_CR_PHASE_CHECKPOINT); });
  while (!g_cb_started.load()) std::this_thread::yield();
  int unregistered_at = -1;
  std::thread app([&] {
    EXPECT_EQ(ompi_cr_callback_unregister(h), OMPI_CR_SUCCESS);
    unregistered_at = g_seq++;
  });
  sleep_ms(50);
  g_cb_release = true;
  app.join();
  agent.join();
  EXPECT_LT(g_cb_returned_at, unregistered_at);
}

// ------------------------------------------------------- critical sections ----

TEST(HintsBarrier, NoSectionsMeansNoWait) {
  EXPECT_TRUE(ocr::hints::begin_checkpoint_barrier(0));
  ocr::hints::end_checkpoint_barrier();
  ocr::hints::end_checkpoint_barrier();  // idempotent
}

TEST(HintsBarrier, CheckpointWaitsForTheLastSection) {
  std::atomic<int> seq{0};
  int left_at = -1, begin_returned_at = -1;
  bool begin_ok = false;
  ASSERT_EQ(ompi_cr_cs_enter(), OMPI_CR_SUCCESS);
  std::thread other_holder_done;
  std::atomic<bool> second_in{false}, second_release{false};
  std::thread second([&] {
    EXPECT_EQ(ompi_cr_cs_enter(), OMPI_CR_SUCCESS);
    second_in = true;
    while (!second_release.load()) std::this_thread::yield();
    EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
  });
  while (!second_in.load()) std::this_thread::yield();
  std::thread agent([&] {
    begin_ok = ocr::hints::begin_checkpoint_barrier(60000);
    begin_returned_at = seq++;
  });
  sleep_ms(30);
  second_release = true;  // one of two sections closes: still waiting
  second.join();
  sleep_ms(30);
  // A nested entry of a thread already inside never blocks, even with the barrier up.
  EXPECT_EQ(ompi_cr_cs_enter(), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
  left_at = seq++;
  EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
  agent.join();
  EXPECT_TRUE(begin_ok);
  EXPECT_LT(left_at, begin_returned_at);
  ocr::hints::end_checkpoint_barrier();
}

TEST(HintsBarrier, EntriesWaitForTheEndOfTheCheckpoint) {
  ASSERT_TRUE(ocr::hints::begin_checkpoint_barrier(1000));
  std::atomic<int> seq{0};
  int ended_at = -1, entered_at = -1;
  std::thread app([&] {
    EXPECT_EQ(ompi_cr_cs_enter(), OMPI_CR_SUCCESS);
    entered_at = seq++;
    EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
  });
  sleep_ms(50);
  // Other API calls are never held back by the barrier.
  ompi_cr_handle_t h;
  Mapping m(1);
  EXPECT_EQ(ompi_cr_exclude(m.p, P, &h), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_hint_remove(h), OMPI_CR_SUCCESS);
  ended_at = seq++;
  ocr::hints::end_checkpoint_barrier();
  app.join();
  EXPECT_LT(ended_at, entered_at);
}

TEST(HintsBarrier, TimeoutGivesUpAndLetsEntriesGoOn) {
  std::atomic<bool> in{false}, release{false};
  std::thread holder([&] {
    EXPECT_EQ(ompi_cr_cs_enter(), OMPI_CR_SUCCESS);
    in = true;
    while (!release.load()) std::this_thread::yield();
    EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
  });
  while (!in.load()) std::this_thread::yield();
  EXPECT_FALSE(ocr::hints::begin_checkpoint_barrier(0));
  EXPECT_FALSE(ocr::hints::begin_checkpoint_barrier(100));
  EXPECT_EQ(ocr::hints::open_critical_sections(), 1u);
  // The barrier is down again: a new section opens at once, in this thread and others.
  EXPECT_EQ(ompi_cr_cs_enter(), OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
  std::thread([] {
    EXPECT_EQ(ompi_cr_cs_enter(), OMPI_CR_SUCCESS);
    EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
  }).join();
  release = true;
  holder.join();
  EXPECT_TRUE(ocr::hints::begin_checkpoint_barrier(0));
  ocr::hints::end_checkpoint_barrier();
}

void enter_and_leave(ompi_cr_phase_t, void* arg) {
  // On the agent with the barrier up this must not block (it would wait for itself).
  *static_cast<int*>(arg) = ompi_cr_cs_enter();
  EXPECT_EQ(ompi_cr_cs_leave(), OMPI_CR_SUCCESS);
}

TEST(HintsBarrier, CallbacksNeverBlockOnTheBarrier) {
  int rc = -100;
  ompi_cr_handle_t h;
  ASSERT_EQ(ompi_cr_callback_register(enter_and_leave, &rc, &h), OMPI_CR_SUCCESS);
  ASSERT_TRUE(ocr::hints::begin_checkpoint_barrier(0));
  ocr::hints::run_callbacks(OMPI_CR_PHASE_CONTINUE);
  ocr::hints::end_checkpoint_barrier();
  EXPECT_EQ(rc, OMPI_CR_SUCCESS);
  EXPECT_EQ(ompi_cr_callback_unregister(h), OMPI_CR_SUCCESS);
}

TEST(HintsBarrier, ManyThreadsStress) {
  // Sections open and close in several threads while the agent raises and lowers the
  // barrier; whenever begin succeeds no section may be open until end.
  std::atomic<bool> stop{false};
  std::atomic<int> inside{0}, violations{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; t++) {
    ts.emplace_back([&] {
      while (!stop.load()) {
        ompi_cr_cs_enter();
        inside++;
        inside--;
        ompi_cr_cs_leave();
      }
    });
  }
  int ok = 0;
  for (int k = 0; k < 2000; k++) {
    if (ocr::hints::begin_checkpoint_barrier(1000)) {
      ok++;
      if (inside.load() != 0 || ocr::hints::open_critical_sections() != 0) violations++;
      ocr::hints::end_checkpoint_barrier();
    }
  }
  stop = true;
  for (std::thread& t : ts) t.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(ok, 2000);
}

}  // namespace
