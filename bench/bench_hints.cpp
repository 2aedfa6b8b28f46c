// Cost of the memory hints API (include/ompi_cr/hints.h). The MPI library may register and
// deregister a receive buffer per message, so these calls must stay far below a
// microsecond, also with many buffers registered and with several threads calling at once.
// Also measured: exclude/remove, critical sections, and the checkpoint-time collection.
// Linked with the hints objects alone (no runtime): what is measured is the registry.
//
//   build/bin/bench_hints [--benchmark_filter=Recv]
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <memory_resource>
#include <vector>

#include "hints/hints_internal.h"
#include "ompi_cr/hints.h"

namespace {

constexpr size_t P = OCR_PAGE_SIZE;
constexpr int kMaxThreads = 8;

// Address space only (never touched): hints are about addresses, not contents.
char* arena(size_t pages) {
  static char* base = static_cast<char*>(mmap(nullptr, (size_t{1} << 40), PROT_NONE,
                                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  static size_t used = 0;
  char* p = base + used * P;
  used += pages;
  return p;
}

// `background` receive buffers stay registered during the measurement (pending receives of
// a busy rank), so the ordered index has a realistic size.
struct Background {
  explicit Background(int64_t n) {
    char* b = arena(2 * static_cast<size_t>(n) + 1);
    for (int64_t k = 0; k < n; k++) {
      ompi_cr_handle_t h;
      if (ompi_cr_recvbuf_register(b + 2 * k * P, P, &h) == OMPI_CR_SUCCESS) hs.push_back(h);
    }
  }
  ~Background() {
    for (ompi_cr_handle_t h : hs) ompi_cr_recvbuf_deregister(h);
  }
  std::vector<ompi_cr_handle_t> hs;
};

Background* g_background = nullptr;
char* g_thread_bufs[kMaxThreads];

void setup(const benchmark::State& state) {
  g_background = new Background(state.range(0));
  for (char*& b : g_thread_bufs) b = arena(64);
}
void teardown(const benchmark::State&) {
  delete g_background;
  g_background = nullptr;
}

// Checkpoint time: turning N registrations into the list of excluded pages, from an arena.
// Registered first: the slot table keeps its high-water mark, and the cost of collection
// grows with it (about 2 ns per slot), so it is measured before the tables grow.
void BM_CollectExclusions(benchmark::State& state) {
  const int64_t n = state.range(0);
  char* b = arena(4 * static_cast<size_t>(n) + 1);
  std::vector<ompi_cr_handle_t> hs;
  for (int64_t k = 0; k < n; k++) {
    ompi_cr_handle_t h;
    if (k % 2) {
      ompi_cr_recvbuf_register(b + 4 * k * P + 100, 3 * P, &h);
      if (k % 4 == 1) ompi_cr_recvbuf_set_data(h, 10, 100);
    } else {
      ompi_cr_exclude(b + 4 * k * P, 3 * P + 5, &h);
    }
    hs.push_back(h);
  }
  std::vector<unsigned char> buf(size_t{64} << 20);
  for (auto _ : state) {
    std::pmr::monotonic_buffer_resource mr(buf.data(), buf.size(),
                                           std::pmr::null_memory_resource());
    std::pmr::vector<ocr::hints::ExcludedRange> out(&mr);
    ocr::hints::collect_exclusions(&mr, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
  for (int64_t k = 0; k < n; k++)
    if (ompi_cr_hint_remove(hs[k]) != OMPI_CR_SUCCESS) ompi_cr_recvbuf_deregister(hs[k]);
}
BENCHMARK(BM_CollectExclusions)->Arg(100)->Arg(10000)->Arg(100000)->Unit(benchmark::kMicrosecond);

// One message: register the posted receive's buffer, deregister it on completion.
void BM_RecvRegisterDeregister(benchmark::State& state) {
  char* buf = g_thread_bufs[state.thread_index() % kMaxThreads];
  for (auto _ : state) {
    ompi_cr_handle_t h;
    if (ompi_cr_recvbuf_register(buf, 16 * P, &h) != OMPI_CR_SUCCESS) state.SkipWithError("reg");
    if (ompi_cr_recvbuf_deregister(h) != OMPI_CR_SUCCESS) state.SkipWithError("dereg");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecvRegisterDeregister)
    ->Setup(setup)
    ->Teardown(teardown)
    ->Arg(0)
    ->Arg(64)
    ->Arg(4096)
    ->Arg(65536)
    ->ThreadRange(1, 4)
    ->UseRealTime();

// The same with the "message arrived" update in between.
void BM_RecvRegisterSetDataDeregister(benchmark::State& state) {
  char* buf = g_thread_bufs[state.thread_index() % kMaxThreads];
  for (auto _ : state) {
    ompi_cr_handle_t h;
    if (ompi_cr_recvbuf_register(buf, 16 * P, &h) != OMPI_CR_SUCCESS) state.SkipWithError("reg");
    ompi_cr_recvbuf_set_data(h, 0, 1000);
    if (ompi_cr_recvbuf_deregister(h) != OMPI_CR_SUCCESS) state.SkipWithError("dereg");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecvRegisterSetDataDeregister)
    ->Setup(setup)
    ->Teardown(teardown)
    ->Arg(64)
    ->ThreadRange(1, 4)
    ->UseRealTime();

void BM_ExcludeRemove(benchmark::State& state) {
  char* buf = g_thread_bufs[state.thread_index() % kMaxThreads];
  for (auto _ : state) {
    ompi_cr_handle_t h;
    if (ompi_cr_exclude(buf, 16 * P, &h) != OMPI_CR_SUCCESS) state.SkipWithError("exclude");
    ompi_cr_hint_remove(h);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ExcludeRemove)
    ->Setup(setup)
    ->Teardown(teardown)
    ->Arg(64)
    ->ThreadRange(1, 4)
    ->UseRealTime();

void BM_CriticalSection(benchmark::State& state) {
  for (auto _ : state) {
    ompi_cr_cs_enter();
    ompi_cr_cs_leave();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CriticalSection)->ThreadRange(1, 4)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
