// Exclusion math of the memory hints (exclusion_math.h) and the registry's bookkeeping
// (registry.h) on private Registry instances: which whole pages are left out and why,
// handle validation, conflicts, slot limits, and that the checkpoint-time path allocates
// only from the arena it is given.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <memory_resource>
#include <new>
#include <random>
#include <vector>

#include "hints/exclusion_math.h"
#include "hints/registry.h"

// Counts heap allocations made by this thread while `g_count_news` is set, to prove that
// collect() and compute_exclusions() use nothing but the given memory resource.
namespace {
thread_local bool g_count_news = false;
thread_local int g_news = 0;
}  // namespace

// The replacement pair below is matched (malloc/free); GCC cannot see that at -O2.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  if (g_count_news) g_news++;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace ocr::hints {
namespace {

constexpr uint64_t P = kPageSize;
constexpr uint64_t B = 0x10000000;  // an arbitrary page-aligned base

struct Out {
  uint64_t start, end;
  uint32_t reason;
  bool operator==(const Out&) const = default;
};
constexpr uint32_t H = OCR_SKIP_HINTED;
constexpr uint32_t R = OCR_SKIP_RECV_BUFFER;

std::ostream& operator<<(std::ostream& os, const Out& o) {
  return os << "[B+" << (o.start - B) / double(P) << "P, B+" << (o.end - B) / double(P) << "P "
            << (o.reason == H   ? "hinted"
                : o.reason == R ? "recv"
                                : "?")
            << "]";
}

std::vector<Out> run(std::vector<TaggedRange> ex, std::vector<ByteRange> keep) {
  std::pmr::monotonic_buffer_resource mr;
  std::pmr::vector<ExcludedRange> out(&mr);
  out.push_back({1, 2, 99});  // replaced, not appended to
  compute_exclusions(ex, keep, &mr, out);
  std::vector<Out> v;
  for (const ExcludedRange& r : out) v.push_back({r.start, r.end, r.reason});
  return v;
}

std::vector<Out> collect(Registry& reg) {
  std::pmr::monotonic_buffer_resource mr;
  std::pmr::vector<ExcludedRange> out(&mr);
  reg.collect(&mr, out);
  std::vector<Out> v;
  for (const ExcludedRange& r : out) v.push_back({r.start, r.end, r.reason});
  return v;
}

const void* at(uint64_t a) {
  return reinterpret_cast<const void*>(a);
}

TEST(HintsMath, NothingRegisteredExcludesNothing) {
  EXPECT_TRUE(run({}, {}).empty());
}

TEST(HintsMath, AlignedRangeIsExcludedExactly) {
  EXPECT_EQ(run({{B, B + 4 * P, H}}, {}), (std::vector<Out>{{B, B + 4 * P, H}}));
}

TEST(HintsMath, PartialPagesAtBothEndsAreSaved) {
  EXPECT_EQ(run({{B + 1, B + 4 * P - 1, H}}, {}), (std::vector<Out>{{B + P, B + 3 * P, H}}));
  EXPECT_EQ(run({{B + P + 100, B + 5 * P + 200, H}}, {}),
            (std::vector<Out>{{B + 2 * P, B + 5 * P, H}}));
}

TEST(HintsMath, RangeWithoutAWholePageExcludesNothing) {
  EXPECT_TRUE(run({{B + 10, B + P + 10, H}}, {}).empty());
  EXPECT_TRUE(run({{B + 100, B + 4000, H}}, {}).empty());
  EXPECT_TRUE(run({{B, B + P - 1, H}}, {}).empty());
}

TEST(HintsMath, TouchingRangesTogetherCoverAPage) {
  EXPECT_EQ(run({{B + P + P / 2, B + 3 * P, H}, {B + P, B + P + P / 2, H}}, {}),
            (std::vector<Out>{{B + P, B + 3 * P, H}}));
}

TEST(HintsMath, OverlappingExcludesUnite) {
  EXPECT_EQ(run({{B + P, B + 5 * P, H}, {B + 3 * P, B + 8 * P, H}}, {}),
            (std::vector<Out>{{B + P, B + 8 * P, H}}));
  // Duplicates and containment.
  EXPECT_EQ(run({{B, B + 8 * P, H}, {B, B + 8 * P, H}, {B + 2 * P, B + 3 * P, H}}, {}),
            (std::vector<Out>{{B, B + 8 * P, H}}));
}

TEST(HintsMath, DisjointRangesStaySeparateAndSorted) {
  EXPECT_EQ(
      run({{B + 10 * P, B + 12 * P, H}, {B, B + P, H}, {B + 5 * P, B + 6 * P, H}}, {}),
      (std::vector<Out>{{B, B + P, H}, {B + 5 * P, B + 6 * P, H}, {B + 10 * P, B + 12 * P, H}}));
}

TEST(HintsMath, IncludeKeepsEveryPageItTouches) {
  EXPECT_EQ(run({{B, B + 10 * P, H}}, {{B + 4 * P + 10, B + 4 * P + 20}}),
            (std::vector<Out>{{B, B + 4 * P, H}, {B + 5 * P, B + 10 * P, H}}));
  // Straddling a page boundary by one byte on each side keeps both pages.
  EXPECT_EQ(run({{B, B + 10 * P, H}}, {{B + 4 * P - 1, B + 4 * P + 1}}),
            (std::vector<Out>{{B, B + 3 * P, H}, {B + 5 * P, B + 10 * P, H}}));
  // Covering everything keeps everything; include order does not matter.
  EXPECT_TRUE(run({{B + P, B + 3 * P, H}}, {{B, B + 4 * P}}).empty());
  EXPECT_TRUE(run({{B, B + 4 * P, H}}, {{B + 3 * P, B + 4 * P}, {B, B + 3 * P}}).empty());
}

TEST(HintsMath, IncludeWithoutExcludeChangesNothing) {
  EXPECT_TRUE(run({}, {{B, B + 4 * P}}).empty());
}

TEST(HintsMath, ReceiveBufferReason) {
  EXPECT_EQ(run({{B, B + 8 * P, R}}, {}), (std::vector<Out>{{B, B + 8 * P, R}}));
}

TEST(HintsMath, MixedPageCountsAsHinted) {
  // Page 2 is covered half by a hint and half by an empty receive buffer.
  EXPECT_EQ(run({{B, B + 2 * P + 100, H}, {B + 2 * P + 100, B + 4 * P, R}}, {}),
            (std::vector<Out>{{B, B + 3 * P, H}, {B + 3 * P, B + 4 * P, R}}));
}

TEST(HintsMath, ReceiveBufferInsideExcludeHint) {
  // Exclude all 8 pages; an empty receive buffer part covers pages 2..5 except 100 bytes of
  // message data at the start of page 3, which keep that page.
  EXPECT_EQ(run({{B, B + 8 * P, H}, {B + 2 * P, B + 3 * P, R}, {B + 3 * P + 100, B + 6 * P, R}},
                {{B + 3 * P, B + 3 * P + 100}}),
            (std::vector<Out>{{B, B + 2 * P, H},
                              {B + 2 * P, B + 3 * P, R},
                              {B + 4 * P, B + 6 * P, R},
                              {B + 6 * P, B + 8 * P, H}}));
}

TEST(HintsMath, AdjacentSameReasonIsMerged) {
  EXPECT_EQ(run({{B, B + 2 * P, R}, {B + 2 * P, B + 4 * P, R}}, {}),
            (std::vector<Out>{{B, B + 4 * P, R}}));
}

// Brute force per page against the rules of exclusion_math.h on random inputs.
TEST(HintsMath, MatchesPerPageModelOnRandomInputs) {
  std::mt19937_64 rng(12345);
  constexpr int kPages = 48;
  for (int iter = 0; iter < 3000; iter++) {
    std::vector<TaggedRange> ex;
    std::vector<ByteRange> keep;
    auto rand_range = [&] {
      uint64_t a = rng() % (kPages * P), b = rng() % (kPages * P);
      if (rng() % 3 == 0) a &= ~(P - 1);
      if (rng() % 3 == 0) b &= ~(P - 1);
      if (a > b) std::swap(a, b);
      if (a == b) b = a + 1 + rng() % (3 * P);
      return ByteRange{B + a, B + b};
    };
    int nex = static_cast<int>(rng() % 6), nkeep = static_cast<int>(rng() % 3);
    for (int i = 0; i < nex; i++) {
      ByteRange r = rand_range();
      ex.push_back({r.start, r.end, rng() % 2 ? H : R});
    }
    for (int i = 0; i < nkeep; i++) keep.push_back(rand_range());

    // Model: per page, is every byte excluded / every byte recv-excluded / any byte kept.
    std::vector<Out> want;
    for (uint64_t pg = 0; pg < kPages + 4; pg++) {
      const uint64_t ps = B + pg * P, pe = ps + P;
      auto covered = [&](bool only_recv) {
        std::vector<ByteRange> parts;
        for (const TaggedRange& t : ex)
          if ((!only_recv || t.reason == R) && t.start < pe && t.end > ps)
            parts.push_back({std::max(t.start, ps), std::min(t.end, pe)});
        std::sort(parts.begin(), parts.end(),
                  [](const ByteRange& a, const ByteRange& b) { return a.start < b.start; });
        uint64_t cur = ps;
        for (const ByteRange& p : parts) {
          if (p.start > cur) return false;
          cur = std::max(cur, p.end);
        }
        return cur >= pe;
      };
      bool kept = false;
      for (const ByteRange& k : keep) kept |= k.start < pe && k.end > ps;
      if (kept || !covered(false)) continue;
      const uint32_t reason = covered(true) ? R : H;
      if (!want.empty() && want.back().end == ps && want.back().reason == reason) {
        want.back().end = pe;
      } else {
        want.push_back({ps, pe, reason});
      }
    }
    ASSERT_EQ(run(ex, keep), want) << "iteration " << iter;
  }
}

TEST(HintsMath, ComputeUsesOnlyTheGivenResource) {
  std::vector<TaggedRange> ex;
  for (int i = 0; i < 200; i++) ex.push_back({B + i * 3 * P + 7, B + i * 3 * P + 2 * P + 9, H});
  std::vector<ByteRange> keep{{B + 30 * P, B + 31 * P}};
  std::pmr::monotonic_buffer_resource mr;
  std::pmr::vector<ExcludedRange> out(&mr);
  g_news = 0;
  g_count_news = true;
  compute_exclusions(ex, keep, &mr, out);
  g_count_news = false;
  EXPECT_EQ(g_news, 0);
  EXPECT_FALSE(out.empty());
}

// ------------------------------------------------------------------- registry ----

TEST(HintsRegistry, ReceiveBufferWithDataSubRange) {
  Registry reg;
  ompi_cr_handle_t a, b;
  ASSERT_EQ(reg.add_range(Registry::kRecv, at(B), 8 * P, &a), OMPI_CR_SUCCESS);
  ASSERT_EQ(reg.add_range(Registry::kRecv, at(B + 8 * P + 100), 8 * P - 100, &b), OMPI_CR_SUCCESS);
  // Holds nothing yet: every whole page of both.
  EXPECT_EQ(collect(reg), (std::vector<Out>{{B, B + 8 * P, R}, {B + 9 * P, B + 16 * P, R}}));
  // Message data at buffer offset 3P, 5000 bytes: absolute [11P+100, 12P+1004).
  ASSERT_EQ(reg.recv_set_data(b, 3 * P, 5000), OMPI_CR_SUCCESS);
  EXPECT_EQ(collect(reg),
            (std::vector<Out>{
                {B, B + 8 * P, R}, {B + 9 * P, B + 11 * P, R}, {B + 13 * P, B + 16 * P, R}}));
  // Holds nothing again.
  ASSERT_EQ(reg.recv_set_data(b, 12345, 0), OMPI_CR_SUCCESS);
  EXPECT_EQ(collect(reg), (std::vector<Out>{{B, B + 8 * P, R}, {B + 9 * P, B + 16 * P, R}}));
  // Full of data: nothing of it is left out.
  ASSERT_EQ(reg.recv_set_data(a, 0, 8 * P), OMPI_CR_SUCCESS);
  EXPECT_EQ(collect(reg), (std::vector<Out>{{B + 9 * P, B + 16 * P, R}}));
  ASSERT_EQ(reg.recv_deregister(b), OMPI_CR_SUCCESS);
  ASSERT_EQ(reg.recv_deregister(a), OMPI_CR_SUCCESS);
  EXPECT_TRUE(collect(reg).empty());
  EXPECT_EQ(reg.live(), 0u);
}

TEST(HintsRegistry, MessageDataIsSavedInsideAnExcludeHint) {
  Registry reg;
  ompi_cr_handle_t e, r;
  ASSERT_EQ(reg.add_range(Registry::kExclude, at(B), 8 * P, &e), OMPI_CR_SUCCESS);
  ASSERT_EQ(reg.add_range(Registry::kRecv, at(B + 2 * P), 4 * P, &r), OMPI_CR_SUCCESS);
  ASSERT_EQ(reg.recv_set_data(r, P, 100), OMPI_CR_SUCCESS);
  EXPECT_EQ(collect(reg), (std::vector<Out>{{B, B + 2 * P, H},
                                            {B + 2 * P, B + 3 * P, R},
                                            {B + 4 * P, B + 6 * P, R},
                                            {B + 6 * P, B + 8 * P, H}}));
}

TEST(HintsRegistry, IncludeOverridesEmptyReceiveBuffer) {
  Registry reg;
  ompi_cr_handle_t r, i;
  ASSERT_EQ(reg.add_range(Registry::kRecv, at(B), 4 * P, &r), OMPI_CR_SUCCESS);
  ASSERT_EQ(reg.add_range(Registry::kInclude, at(B + P), P, &i), OMPI_CR_SUCCESS);
  EXPECT_EQ(collect(reg), (std::vector<Out>{{B, B + P, R}, {B + 2 * P, B + 4 * P, R}}));
  ASSERT_EQ(reg.remove_hint(i), OMPI_CR_SUCCESS);
  EXPECT_EQ(collect(reg), (std::vector<Out>{{B, B + 4 * P, R}}));
}

TEST(HintsRegistry, RemovedHintNoLongerCounts) {
  Registry reg;
  ompi_cr_handle_t e1, e2;
  ASSERT_EQ(reg.add_range(Registry::kExclude, at(B), 4 * P, &e1), OMPI_CR_SUCCESS);
  ASSERT_EQ(reg.add_range(Registry::kExclude, at(B + 2 * P), 4 * P, &e2), OMPI_CR_SUCCESS);
  EXPECT_EQ(collect(reg), (std::vector<Out>{{B, B + 6 * P, H}}));
  ASSERT_EQ(reg.remove_hint(e1), OMPI_CR_SUCCESS);
  EXPECT_EQ(collect(reg), (std::vector<Out>{{B + 2 * P, B + 6 * P, H}}));
  EXPECT_EQ(reg.remove_hint(e1), OMPI_CR_ERR_UNKNOWN_HANDLE);  // twice
}

TEST(HintsRegistry, InvalidRanges) {
  Registry reg;
  ompi_cr_handle_t h = 777;
  for (Registry::Kind k : {Registry::kExclude, Registry::kInclude, Registry::kRecv}) {
    EXPECT_EQ(reg.add_range(k, nullptr, P, &h), OMPI_CR_ERR_INVALID);
    EXPECT_EQ(reg.add_range(k, at(B), 0, &h), OMPI_CR_ERR_INVALID);
    EXPECT_EQ(reg.add_range(k, at(B), P, nullptr), OMPI_CR_ERR_INVALID);
    EXPECT_EQ(reg.add_range(k, at(UINT64_MAX - 10), 100, &h), OMPI_CR_ERR_INVALID);  // wraps
    EXPECT_EQ(reg.add_range(k, at(kAddressLimit - 10), 11, &h), OMPI_CR_ERR_INVALID);
    EXPECT_EQ(reg.add_range(k, at(B), SIZE_MAX, &h), OMPI_CR_ERR_INVALID);
  }
  EXPECT_EQ(h, 777);  // untouched on failure
  EXPECT_EQ(reg.add_range(Registry::kExclude, at(kAddressLimit - 10), 10, &h), OMPI_CR_SUCCESS);
  EXPECT_EQ(reg.live(), 1u);
}

TEST(HintsRegistry, ReceiveBuffersMustBeDisjoint) {
  Registry reg;
  ompi_cr_handle_t a, h;
  ASSERT_EQ(reg.add_range(Registry::kRecv, at(B + 4 * P), 4 * P, &a), OMPI_CR_SUCCESS);
  const std::array<std::pair<uint64_t, uint64_t>, 6> overlapping{{
      {B + 4 * P, 4 * P},   // identical
      {B + 3 * P, P + 1},   // overlaps the first byte
      {B + 8 * P - 1, 10},  // overlaps the last byte
      {B + 5 * P, 10},      // inside
      {B, 16 * P},          // contains it
      {B + 7 * P, 4 * P},   // overlaps the tail
  }};
  for (auto [s, n] : overlapping)
    EXPECT_EQ(reg.add_range(Registry::kRecv, at(s), n, &h), OMPI_CR_ERR_CONFLICT) << s - B;
  // Touching is not overlapping.
  ompi_cr_handle_t left, right;
  EXPECT_EQ(reg.add_range(Registry::kRecv, at(B + 3 * P), P, &left), OMPI_CR_SUCCESS);
  EXPECT_EQ(reg.add_range(Registry::kRecv, at(B + 8 * P), P, &right), OMPI_CR_SUCCESS);
  // Exclude and include hints never conflict, not even with receive buffers.
  EXPECT_EQ(reg.add_range(Registry::kExclude, at(B + 4 * P), 4 * P, &h), OMPI_CR_SUCCESS);
  EXPECT_EQ(reg.add_range(Registry::kInclude, at(B + 4 * P), 4 * P, &h), OMPI_CR_SUCCESS);
  // After deregistering, the range is free again.
  ASSERT_EQ(reg.recv_deregister(a), OMPI_CR_SUCCESS);
  EXPECT_EQ(reg.add_range(Registry::kRecv, at(B + 5 * P), P, &h), OMPI_CR_SUCCESS);
}

TEST(HintsRegistry, SetDataMustLieInsideTheBuffer) {
  Registry reg;
  ompi_cr_handle_t r;
  ASSERT_EQ(reg.add_range(Registry::kRecv, at(B), 1000, &r), OMPI_CR_SUCCESS);
  EXPECT_EQ(reg.recv_set_data(r, 0, 1000), OMPI_CR_SUCCESS);
  EXPECT_EQ(reg.recv_set_data(r, 999, 1), OMPI_CR_SUCCESS);
  EXPECT_EQ(reg.recv_set_data(r, 0, 1001), OMPI_CR_ERR_INVALID);
  EXPECT_EQ(reg.recv_set_data(r, 1000, 1), OMPI_CR_ERR_INVALID);
  EXPECT_EQ(reg.recv_set_data(r, 1, SIZE_MAX), OMPI_CR_ERR_INVALID);
  EXPECT_EQ(reg.recv_set_data(r, SIZE_MAX, 1), OMPI_CR_ERR_INVALID);
  EXPECT_EQ(reg.recv_set_data(r, SIZE_MAX, 0), OMPI_CR_SUCCESS);  // holds nothing
}

TEST(HintsRegistry, HandlesArePositiveUniqueAndKindChecked) {
  Registry reg;
  ompi_cr_handle_t e, i, r, c;
  ASSERT_EQ(reg.add_range(Registry::kExclude, at(B), P, &e), OMPI_CR_SUCCESS);
  ASSERT_EQ(reg.add_range(Registry::kInclude, at(B), P, &i), OMPI_CR_SUCCESS);
  ASSERT_EQ(reg.add_range(Registry::kRecv, at(B), P, &r), OMPI_CR_SUCCESS);
  ASSERT_EQ(reg.callback_register([](ompi_cr_phase_t, void*) {}, nullptr, &c), OMPI_CR_SUCCESS);
  std::vector<int> hs{e, i, r, c};
  for (int h : hs) EXPECT_GT(h, 0);
  std::sort(hs.begin(), hs.end());
  EXPECT_EQ(std::unique(hs.begin(), hs.end()), hs.end());
  // Each kind only through its own function.
  EXPECT_EQ(reg.remove_hint(r), OMPI_CR_ERR_UNKNOWN_HANDLE);
  EXPECT_EQ(reg.remove_hint(c), OMPI_CR_ERR_UNKNOWN_HANDLE);
  EXPECT_EQ(reg.recv_deregister(e), OMPI_CR_ERR_UNKNOWN_HANDLE);
  EXPECT_EQ(reg.recv_set_data(i, 0, 1), OMPI_CR_ERR_UNKNOWN_HANDLE);
  EXPECT_EQ(reg.callback_unregister(r), OMPI_CR_ERR_UNKNOWN_HANDLE);
  for (int bad : {0, -1, -7, INT32_MIN, INT32_MAX, 12345678})
    EXPECT_EQ(reg.remove_hint(bad), OMPI_CR_ERR_UNKNOWN_HANDLE) << bad;
  EXPECT_EQ(reg.live(), 4u);
  EXPECT_EQ(reg.remove_hint(i), OMPI_CR_SUCCESS);
  EXPECT_EQ(reg.remove_hint(e), OMPI_CR_SUCCESS);
  EXPECT_EQ(reg.recv_deregister(r), OMPI_CR_SUCCESS);
  EXPECT_EQ(reg.callback_unregister(c), OMPI_CR_SUCCESS);
  EXPECT_EQ(reg.live(), 0u);
}

TEST(HintsRegistry, StaleHandleOfAReusedSlotIsUnknown) {
  Registry reg(1);  // one slot: every registration reuses it
  ompi_cr_handle_t first, second;
  ASSERT_EQ(reg.add_range(Registry::kExclude, at(B), P, &first), OMPI_CR_SUCCESS);
  ASSERT_EQ(reg.remove_hint(first), OMPI_CR_SUCCESS);
  ASSERT_EQ(reg.add_range(Registry::kExclude, at(B), P, &second), OMPI_CR_SUCCESS);
  EXPECT_NE(first, second);
  EXPECT_EQ(reg.remove_hint(first), OMPI_CR_ERR_UNKNOWN_HANDLE);
  EXPECT_EQ(reg.live(), 1u);
  EXPECT_EQ(reg.remove_hint(second), OMPI_CR_SUCCESS);
}

TEST(HintsRegistry, FullTableIsNomemAndRecovers) {
  Registry reg(4);
  std::vector<ompi_cr_handle_t> hs(4);
  for (int k = 0; k < 4; k++)
    ASSERT_EQ(reg.add_range(Registry::kRecv, at(B + k * P), P, &hs[k]), OMPI_CR_SUCCESS);
  ompi_cr_handle_t h;
  EXPECT_EQ(reg.add_range(Registry::kExclude, at(B), P, &h), OMPI_CR_ERR_NOMEM);
  EXPECT_EQ(reg.add_range(Registry::kRecv, at(B + 10 * P), P, &h), OMPI_CR_ERR_NOMEM);
  EXPECT_EQ(reg.callback_register([](ompi_cr_phase_t, void*) {}, nullptr, &h), OMPI_CR_ERR_NOMEM);
  // The failed receive buffer did not stay in the overlap index.
  ASSERT_EQ(reg.recv_deregister(hs[0]), OMPI_CR_SUCCESS);
  EXPECT_EQ(reg.add_range(Registry::kRecv, at(B + 10 * P), P, &h), OMPI_CR_SUCCESS);
  EXPECT_EQ(reg.live(), 4u);
}

TEST(HintsRegistry, SlotsAreNotReusedRightAway) {
  // A stale handle must not silently name a new registration: the first kReuseDistance
  // registrations after a free get fresh slots.
  Registry reg;
  ompi_cr_handle_t first;
  ASSERT_EQ(reg.add_range(Registry::kRecv, at(B), P, &first), OMPI_CR_SUCCESS);
  ASSERT_EQ(reg.recv_deregister(first), OMPI_CR_SUCCESS);
  for (uint32_t k = 0; k < 3 * Registry::kReuseDistance; k++) {
    ompi_cr_handle_t h;
    ASSERT_EQ(reg.add_range(Registry::kRecv, at(B), P, &h), OMPI_CR_SUCCESS);
    ASSERT_NE(h, first);
    EXPECT_EQ(reg.recv_deregister(first), OMPI_CR_ERR_UNKNOWN_HANDLE);
    ASSERT_EQ(reg.recv_deregister(h), OMPI_CR_SUCCESS);
  }
}

TEST(HintsRegistry, CollectUsesOnlyTheGivenResource) {
  Registry reg;
  std::vector<ompi_cr_handle_t> hs;
  for (int k = 0; k < 300; k++) {
    ompi_cr_handle_t h;
    ASSERT_EQ(reg.add_range(k % 3 ? Registry::kRecv : Registry::kExclude, at(B + k * 4 * P + 5),
                            3 * P - 10, &h),
              OMPI_CR_SUCCESS);
    if (k % 3 == 1) {
      ASSERT_EQ(reg.recv_set_data(h, 10, 20), OMPI_CR_SUCCESS);
    }
  }
  alignas(64) static unsigned char buf[1 << 20];
  std::pmr::monotonic_buffer_resource mr(buf, sizeof buf, std::pmr::null_memory_resource());
  std::pmr::vector<ExcludedRange> out(&mr);
  g_news = 0;
  g_count_news = true;
  reg.collect(&mr, out);
  g_count_news = false;
  EXPECT_EQ(g_news, 0);
  ASSERT_FALSE(out.empty());
  for (size_t k = 0; k < out.size(); k++) {
    EXPECT_EQ(out[k].start % P, 0u);
    EXPECT_EQ(out[k].end % P, 0u);
    EXPECT_LT(out[k].start, out[k].end);
    if (k) {
      EXPECT_LE(out[k - 1].end, out[k].start);
    }
  }
}

}  // namespace
}  // namespace ocr::hints
