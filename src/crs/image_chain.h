// Incremental chains: where each page of the newest image's layout really comes from,
// and compaction of a chain into one full image that needs no parent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crs/image_reader.h"

namespace ocr {

// Bytes to put at [addr, addr+len): taken from chain[image] at file offset `offset`.
struct ResolvedRun {
  uint64_t addr;
  uint64_t len;
  size_t image;
  uint64_t offset;
};

// For one region of chain[0] (the newest image): the pieces of page data that make it up,
// sorted by address. Inherited runs are looked up in the parents, newest first; a page no
// image of the chain holds is untouched (zero, or the file's bytes).
void resolve_region_runs(const std::vector<Image>& chain, const ImageRegion& region,
                         std::vector<ResolvedRun>* out);

// Writes a full image equivalent to the chain ending in chain[0] to `out_path`
// (".tmp", fsync, rename; mode 0600). Returns false with a one-line error.
bool compact_chain(const std::vector<Image>& chain, const std::string& out_path,
                   std::string* error);

}  // namespace ocr
