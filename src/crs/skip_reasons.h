// Names of the skip reasons (enum ocr_skip_reason) shared by the runtime, the control
// channel and the tools. Header-only and allocation-free because the runtime needs them
// while application threads are frozen (result files, log lines).
#pragma once

#include "crs/image_format.h"

namespace ocr {

// Stable names: they appear in result files (skipped_<name>=) and in tool output, so
// changing one is a format change.
inline constexpr const char* kSkipReasonNames[OCR_SKIP_REASONS] = {
    "untouched", "clean-file",  "shared-file", "kernel",         "runtime",   "zero",
    "device",    "mpi-runtime", "hinted",      "receive-buffer", "unchanged",
};

// "unknown" for values outside the enum (e.g. read from a damaged image).
inline constexpr const char* skip_reason_name(unsigned reason) {
  return reason < OCR_SKIP_REASONS ? kSkipReasonNames[reason] : "unknown";
}

}  // namespace ocr
