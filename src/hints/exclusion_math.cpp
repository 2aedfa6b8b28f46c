// Page arithmetic behind collect_exclusions (see exclusion_math.h for the rules).
// Everything is a sweep over sorted interval lists: O(n log n) for the sorts, no
// allocation except the temporary lists taken from the caller's memory resource.
#include "hints/exclusion_math.h"

#include <algorithm>

namespace ocr::hints {
namespace {

using RangeVec = std::pmr::vector<ByteRange>;

constexpr uint64_t page_down(uint64_t a) {
  return a & ~(kPageSize - 1);
}
constexpr uint64_t page_up(uint64_t a) {
  return (a + kPageSize - 1) & ~(kPageSize - 1);
}

// Appends [s, e) to a list sorted by start, merging it with the last range when they
// overlap or touch (touching exclusions together cover the page between them).
void append_merged(RangeVec& v, uint64_t s, uint64_t e) {
  if (!v.empty() && s <= v.back().end) {
    v.back().end = std::max(v.back().end, e);
  } else {
    v.push_back({s, e});
  }
}

// Union of sorted-by-start byte ranges, then shrunk inward to whole pages.
void union_whole_pages(const RangeVec& merged, RangeVec& out) {
  for (const ByteRange& r : merged) {
    uint64_t s = page_up(r.start), e = page_down(r.end);
    if (s < e) out.push_back({s, e});
  }
}

// a minus b; both sorted and disjoint.
void subtract(const RangeVec& a, const RangeVec& b, RangeVec& out) {
  size_t j = 0;
  for (const ByteRange& r : a) {
    uint64_t cur = r.start;
    while (j < b.size() && b[j].end <= cur) j++;
    for (size_t k = j; k < b.size() && b[k].start < r.end; k++) {
      if (b[k].start > cur) out.push_back({cur, b[k].start});
      cur = std::max(cur, b[k].end);
      if (cur >= r.end) break;
    }
    if (cur < r.end) out.push_back({cur, r.end});
  }
}

// a intersected with b; both sorted and disjoint.
void intersect(const RangeVec& a, const RangeVec& b, RangeVec& out) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    uint64_t s = std::max(a[i].start, b[j].start), e = std::min(a[i].end, b[j].end);
    if (s < e) out.push_back({s, e});
    if (a[i].end < b[j].end) {
      i++;
    } else {
      j++;
    }
  }
}

void emit(std::pmr::vector<ExcludedRange>& out, uint64_t s, uint64_t e, uint32_t reason) {
  if (!out.empty() && out.back().end == s && out.back().reason == reason) {
    out.back().end = e;
  } else {
    out.push_back({s, e, reason});
  }
}

}  // namespace

void compute_exclusions(std::span<TaggedRange> excludes, std::span<ByteRange> keeps,
                        std::pmr::memory_resource* mr, std::pmr::vector<ExcludedRange>& out) {
  out.clear();
  if (excludes.empty()) return;
  std::sort(excludes.begin(), excludes.end(),
            [](const TaggedRange& a, const TaggedRange& b) { return a.start < b.start; });
  std::sort(keeps.begin(), keeps.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.start < b.start; });

  // Union of all exclusions, and union of the receive-buffer ones (for the reason).
  RangeVec all(mr), recv(mr);
  all.reserve(excludes.size());
  recv.reserve(excludes.size());
  for (const TaggedRange& t : excludes) {
    append_merged(all, t.start, t.end);
    if (t.reason == OCR_SKIP_RECV_BUFFER) append_merged(recv, t.start, t.end);
  }
  RangeVec all_pages(mr), recv_pages(mr);
  all_pages.reserve(all.size());
  recv_pages.reserve(recv.size());
  union_whole_pages(all, all_pages);
  union_whole_pages(recv, recv_pages);

  // Pages to keep: every page a keep range touches, even by one byte.
  RangeVec keep_pages(mr);
  keep_pages.reserve(keeps.size());
  for (const ByteRange& k : keeps) append_merged(keep_pages, page_down(k.start), page_up(k.end));

  RangeVec left(mr);
  left.reserve(all_pages.size() + keep_pages.size());
  subtract(all_pages, keep_pages, left);

  RangeVec as_recv(mr), as_hinted(mr);
  as_recv.reserve(left.size() + recv_pages.size());
  as_hinted.reserve(left.size() + recv_pages.size());
  intersect(left, recv_pages, as_recv);
  subtract(left, recv_pages, as_hinted);

  out.reserve(as_recv.size() + as_hinted.size());
  size_t i = 0, j = 0;
  while (i < as_recv.size() || j < as_hinted.size()) {
    if (j == as_hinted.size() || (i < as_recv.size() && as_recv[i].start < as_hinted[j].start)) {
      emit(out, as_recv[i].start, as_recv[i].end, OCR_SKIP_RECV_BUFFER);
      i++;
    } else {
      emit(out, as_hinted[j].start, as_hinted[j].end, OCR_SKIP_HINTED);
      j++;
    }
  }
}

}  // namespace ocr::hints
