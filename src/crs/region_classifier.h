// Region policy of the checkpoint (DESIGN.md section 4 step 2): what the image does with
// each mapping. A pure function of one parsed maps entry, so the policy is testable
// without building address spaces.
#pragma once

#include <cstdint>

#include "crs/image_format.h"
#include "crs/page_scan.h"
#include "crs/proc_maps.h"

namespace ocr {

struct RegionClass {
  uint32_t kind;         // enum ocr_region_kind from image_format.h
  uint32_t skip_reason;  // enum ocr_skip_reason when kind == OCR_REGION_SKIPPED, else
                         // OCR_SKIP_REASONS
  uint32_t flags;        // OCR_REGION_GROWSDOWN / HEAP / STACK
  PageSelect select;     // which pages to save (ignored for SKIPPED and FILE_SHARED)
  bool needs_file;       // a file identity record is needed (FILE_PRIVATE, FILE_SHARED)
};

// is_runtime_owned: the region lies inside an area the ompi-cr runtime registered as its own.
// Rules, first match wins:
//   runtime-owned                                  -> SKIPPED / OCR_SKIP_RUNTIME
//   [vvar] [vvar_vclock] [vdso] [vsyscall] [uprobes] -> SKIPPED / OCR_SKIP_KERNEL
//   VmFlags ht (hugetlb)                           -> SKIPPED / OCR_SKIP_DEVICE (for now)
//   VmFlags io or pf                               -> SKIPPED / OCR_SKIP_DEVICE
//   private, reopenable file                       -> FILE_PRIVATE, kPrivateCopies
//   shared, reopenable file                        -> FILE_SHARED
//   other private, inode 0 or /dev/zero            -> ANON_PRIVATE, kPresentOrSwapped
//   other private (deleted file, ...)              -> ANON_PRIVATE, kPresentOrResident
//   other shared (shmem, /dev/zero, SysV, memfd...)-> ANON_SHARED, kPresentOrResident
// A reopenable file: path starts with '/', inode != 0, not deleted, not /dev/zero, not a
// kernel-internal shmem name (/SYSV..., /memfd:...).
RegionClass classify_region(const MapEntry& e, bool is_runtime_owned);

}  // namespace ocr
