// Writes the image of the calling process (format: image_format.h) while its application
// threads are parked. Scans and classifies memory, saves the pages that matter, records
// kernel state, then commits atomically: "<final>.tmp" -> fsync -> rename -> fsync(dir).
#pragma once

#include <cstdint>
#include <memory_resource>

#include "crs/image_format.h"

namespace ocr {

class DirtyTracker;

struct AddressRange {
  uint64_t start, end;
};

// Pages left out on request (memory hints): whole pages, sorted, non-overlapping.
struct ExcludedPages {
  uint64_t start, end;
  uint32_t reason;  // OCR_SKIP_HINTED or OCR_SKIP_RECV_BUFFER
};

struct ImageWriteSpec {
  const char* dir = nullptr;         // existing directory of the image
  const char* final_path = nullptr;  // the committed image file
  const char* tmp_path = nullptr;    // written first
  uint64_t seq = 0;
  const ocr_thread_record* threads = nullptr;
  uint32_t nthreads = 0;
  const AddressRange* runtime_areas = nullptr;  // never saved (the runtime's scratch)
  int nareas = 0;
  const int* runtime_fds = nullptr;  // not recorded as application files
  int nfds = 0;
  // Mappings of the MPI library's runtime (transport segments, session files): left out of
  // the image entirely (skip reason mpi-runtime); a restored process never touches them.
  const AddressRange* mpi_runtime_areas = nullptr;
  int nmpi_areas = 0;
  uint64_t restore_info_addr = 0;
  uint32_t tid_offset = 0;
  int32_t rseq_offset = 0;
  uint32_t rseq_size = 0;
  uint32_t rseq_sig = 0;
  const ExcludedPages* excluded = nullptr;
  int nexcluded = 0;
  // Dirty tracking: with `incremental`, regions the tracker followed since the parent
  // image hold only written pages (the rest is inherited from the parent). After a
  // committed image the tracker is re-armed from the new state; after a failure it is
  // invalidated (the next image must be full).
  DirtyTracker* tracker = nullptr;
  bool incremental = false;
  const char* parent = nullptr;  // path stored in the header, relative to `dir` if inside it
  uint64_t parent_hash = 0;
  uint32_t parent_chain_length = 0;
};

struct ImageWriteResult {
  uint64_t saved_bytes = 0;
  uint64_t skipped[OCR_SKIP_REASONS] = {};
  uint64_t regions = 0;
  uint64_t runs = 0;
  uint64_t header_hash = 0;  // of the committed image: the parent hash of the next one
  uint32_t chain_length = 0;
  bool tracker_armed = false;  // incrementals are possible after this image
  char message[512] = {};      // one line, set on failure
};

// Returns 0, or -1 with res->message set; on failure nothing is left at final_path or
// tmp_path. Allocates only from `mr`.
int write_image(std::pmr::memory_resource* mr, const ImageWriteSpec& spec, ImageWriteResult* res);

}  // namespace ocr
