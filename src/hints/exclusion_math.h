// Turns byte ranges (exclusions and ranges to keep) into the whole pages the image leaves
// out. Pure and allocation-bounded (only from the given memory resource) so that it can
// run at checkpoint time with application threads parked, and be tested on its own.
#pragma once

#include <cstdint>
#include <memory_resource>
#include <span>
#include <vector>

#include "hints/hints_internal.h"

namespace ocr::hints {

inline constexpr uint64_t kPageSize = OCR_PAGE_SIZE;

struct ByteRange {
  uint64_t start, end;  // [start, end), start < end
};

struct TaggedRange {
  uint64_t start, end;
  uint32_t reason;  // OCR_SKIP_HINTED (exclude hint) or OCR_SKIP_RECV_BUFFER (empty buffer part)
};

// Rules (docs/hints.md, "Which pages are left out"):
//   - a page is left out when every byte of it lies in the union of `excludes` and no
//     byte of it lies in any of `keeps` (include hints, receive-buffer message data);
//   - its reason is OCR_SKIP_RECV_BUFFER when every byte lies in the union of the
//     RECV_BUFFER excludes, otherwise OCR_SKIP_HINTED.
// Replaces `out` with sorted, disjoint, page-aligned ranges; adjacent ones with the same
// reason are merged. Sorts the input spans in place. Ranges must not wrap and must end
// below 2^63 (the API limits them to 2^57).
void compute_exclusions(std::span<TaggedRange> excludes, std::span<ByteRange> keeps,
                        std::pmr::memory_resource* mr, std::pmr::vector<ExcludedRange>& out);

}  // namespace ocr::hints
