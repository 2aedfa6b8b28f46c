/* The restore plan: everything the freestanding restorer blob needs, prepared by
 * ompi-cr-restore's loader (normal C++) after the image was fully validated, and copied
 * into the "hole" next to the blob. The blob runs with no libc, no heap and no other
 * mapping of the loader left, so the plan is self-contained: arrays are addressed by
 * byte offsets from the plan's own start, file descriptors are already open.
 */
#ifndef OMPI_CR_CRS_RESTORE_PLAN_H
#define OMPI_CR_CRS_RESTORE_PLAN_H

#include <stdint.h>

#include "crs/image_format.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCR_PLAN_MAGIC 0x4e414c5052434f00ull /* "\0OCRPLAN" */
#define OCR_PLAN_VERSION 1u

struct ocr_plan_region {
  uint64_t start, end;
  uint64_t file_offset;
  uint64_t first_run; /* index into the runs array */
  uint32_t nruns;
  uint32_t prot;       /* final protection */
  uint32_t mmap_flags; /* MAP_PRIVATE/MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN (no FIXED) */
  int32_t fd;          /* file to map, -1 for anonymous */
};

struct ocr_plan_run {
  uint64_t addr;
  uint64_t len;
  uint64_t image_offset;
  int32_t fd; /* the image of the chain that holds these bytes */
  int32_t pad;
};

struct ocr_plan_fd {
  int32_t tmp_fd;    /* open in the loader, above every target */
  int32_t target_fd; /* the number the program had */
  int64_t offset;    /* file offset to set, -1 = leave */
  uint32_t cloexec;
  uint32_t pad;
};

struct ocr_plan_thread {
  struct ocr_thread_record rec;
  uint64_t blob_stack_top; /* stack inside the hole for the blob's code before the jump */
  uint64_t plan_addr;      /* set by the blob: how a cloned thread finds the plan */
};

/* One kernel special mapping ([vvar], [vvar_vclock], [vdso]) of the loader now, and where
 * the restored program expects it. */
struct ocr_plan_special {
  uint64_t cur_start, cur_end, new_start;
};

/* Kernel layout of struct prctl_mm_map. */
struct ocr_kernel_mm_map {
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint64_t auxv;
  uint32_t auxv_size;
  uint32_t exe_fd;
};

struct ocr_plan {
  uint64_t magic;
  uint32_t version;
  uint32_t verbose;
  uint64_t plan_size; /* bytes, including the arrays */
  uint64_t hole_start, hole_size;
  uint64_t vdso_temp; /* free page-aligned space in the hole for moving specials around */
  int32_t pad1;
  int32_t exe_fd; /* the program file, for PR_SET_MM_MAP's exe_fd; -1 = none */

  uint32_t nspecials;
  uint32_t nregions;
  uint32_t nfds;
  uint32_t nthreads;
  uint32_t nclose;
  uint32_t main_index; /* index of the OCR_THREAD_MAIN thread */
  uint64_t nruns;
  uint64_t specials_off, regions_off, runs_off, fds_off, threads_off, close_off;

  int32_t have_mm_map;
  int32_t pad0;
  struct ocr_kernel_mm_map mm; /* .auxv is set by the blob to point at auxv[] below */
  uint64_t auxv[64];

  uint64_t restore_info_addr; /* struct ocr_restore_info inside the restored runtime */
  uint64_t generation;
  uint64_t image_hash; /* header_hash of the image restored */
  uint32_t chain_length;
  uint32_t pad2;
  char image_path[OCR_MAX_PATH]; /* absolute, NUL terminated */
  char proxy_channel[128];       /* ocr_restore_info.proxy_channel */
  uint32_t keep_tids;            /* the process got its old PID: ask for the old thread ids too */
  uint32_t tid_offset;
  int32_t rseq_offset;
  uint32_t rseq_size;
  uint32_t rseq_sig;
};

/* The blob's entry point: placed first in the blob, called on a stack inside the hole. */
typedef void (*ocr_blob_entry_fn)(struct ocr_plan* plan);

#ifdef __cplusplus
}
#endif
#endif
