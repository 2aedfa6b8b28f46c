// Writes the image of the calling process (format: image_format.h) while its application
// threads are parked. Scans and classifies memory, saves the pages that matter, records
// kernel state, then commits atomically: "<final>.tmp" -> fsync -> rename -> fsync(dir).
#pragma once

#include <cstdint>
#include <memory_resource>

#include "crs/image_format.h"

namespace ocr {

struct AddressRange {
  uint64_t start, end;
};

struct ImageWriteSpec {
  const char* dir = nullptr;        // existing directory of the image
  const char* final_path = nullptr; // the committed image file
  const char* tmp_path = nullptr;   // written first
  uint64_t seq = 0;
  const ocr_thread_record* threads = nullptr;
  uint32_t nthreads = 0;
  const AddressRange* runtime_areas = nullptr;  // never saved (the runtime's scratch)
  int nareas = 0;
  const int* runtime_fds = nullptr;  // not recorded as application files
  int nfds = 0;
  uint64_t restore_info_addr = 0;
  uint32_t tid_offset = 0;
  int32_t rseq_offset = 0;
  uint32_t rseq_size = 0;
  uint32_t rseq_sig = 0;
};

struct ImageWriteResult {
  uint64_t saved_bytes = 0;
  uint64_t skipped[OCR_SKIP_REASONS] = {};
  uint64_t regions = 0;
  uint64_t runs = 0;
  char message[512] = {};  // one line, set on failure
};

// Returns 0, or -1 with res->message set; on failure nothing is left at final_path or
// tmp_path. Allocates only from `mr`.
int write_image(std::pmr::memory_resource* mr, const ImageWriteSpec& spec, ImageWriteResult* res);

}  // namespace ocr
