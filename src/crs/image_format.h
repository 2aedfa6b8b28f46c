/* On-disk layout of an ompi-cr process image, format version 1.
 *
 * Plain C with fixed-width fields so that the writer (runtime, C++), the reader and
 * validator (tools, C++) and the freestanding restorer blob (C, no libc) share one
 * definition. docs/image-format.md is the prose version of this file; change both.
 *
 * File layout (all integers little-endian, x86_64 only):
 *   [0, 4096)                 struct ocr_image_header (zero padded)
 *   [records_offset, +size)   records: struct ocr_record_header + payload, repeated
 *   [data_offset, +data_size) page data; every run starts on a page boundary
 */
#ifndef OMPI_CR_CRS_IMAGE_FORMAT_H
#define OMPI_CR_CRS_IMAGE_FORMAT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OCR_IMAGE_MAGIC "OMPICRIM" /* 8 bytes, no terminator stored */
#define OCR_IMAGE_VERSION 1u
#define OCR_HEADER_AREA 4096u /* bytes reserved for the header at offset 0 */
#define OCR_PAGE_SIZE 4096u
#define OCR_MAX_PATH 4096u
#define OCR_MAX_THREADS 4096u
#define OCR_MAX_BUILD_ID 64u

/* Why pages were not written to the image. Counted in bytes per reason. */
enum ocr_skip_reason {
  OCR_SKIP_UNTOUCHED = 0,   /* anonymous pages never touched (not present, not swapped) */
  OCR_SKIP_CLEAN_FILE = 1,  /* private file pages never written: restored from the file */
  OCR_SKIP_SHARED_FILE = 2, /* shared file mappings: the file holds the data */
  OCR_SKIP_KERNEL = 3,      /* [vvar], [vvar_vclock], [vdso], [vsyscall] */
  OCR_SKIP_RUNTIME = 4,     /* ompi-cr's own scratch areas */
  OCR_SKIP_ZERO = 5,        /* pages mapped to the shared zero page */
  OCR_SKIP_DEVICE = 6,      /* VM_IO / VM_PFNMAP device mappings (not restorable) */
  OCR_SKIP_MPI_RUNTIME = 7, /* MPI library's transport segments (direct mode) */
  OCR_SKIP_HINTED = 8,      /* excluded by a memory hint */
  OCR_SKIP_RECV_BUFFER = 9, /* pages of posted receive buffers holding no message */
  OCR_SKIP_UNCHANGED = 10,  /* incremental: not written since the parent image */
  OCR_SKIP_REASONS = 11
};

enum ocr_dirty_backend {
  OCR_DIRTY_NONE = 0,       /* full image, no tracking */
  OCR_DIRTY_UFFD_WP = 1,    /* userfaultfd write-protect (async) + PAGEMAP_SCAN */
  OCR_DIRTY_SOFT_DIRTY = 2, /* /proc/self/clear_refs 4 + pagemap bit 55 */
  OCR_DIRTY_HASH = 3        /* per-page content hashes against the parent */
};

/* Header flags */
#define OCR_HDR_INCREMENTAL (1ull << 0) /* runs hold only pages changed since parent */
#define OCR_HDR_HAVE_MM_MAP (1ull << 1) /* mm_map fields in the process record are valid */

struct ocr_image_header {
  char magic[8];           /* OCR_IMAGE_MAGIC */
  uint32_t version;        /* OCR_IMAGE_VERSION */
  uint32_t header_size;    /* sizeof(struct ocr_image_header) */
  uint64_t flags;          /* OCR_HDR_* */
  uint32_t page_size;      /* OCR_PAGE_SIZE */
  uint32_t uid;            /* real uid of the checkpointed process */
  int32_t pid;             /* pid at checkpoint */
  uint32_t nthreads;       /* thread records in the records section */
  uint64_t seq;            /* sequence number of this image for its process */
  uint64_t created_ns;     /* CLOCK_REALTIME at commit */
  uint64_t records_offset; /* first record */
  uint64_t records_size;   /* bytes of all records */
  uint64_t records_hash;   /* XXH3-64 of the whole records section */
  uint64_t data_offset;    /* page data, page aligned */
  uint64_t data_size;      /* bytes of page data */
  uint64_t xfeatures;      /* XCR0 at checkpoint: extended CPU state the frames hold */
  uint32_t xsave_size;     /* CPUID(0xd,0).ebx: bytes of the XSAVE area */
  uint32_t reserved0;
  uint64_t skipped_bytes[16]; /* indexed by enum ocr_skip_reason */
  uint64_t saved_bytes;       /* bytes of page data (== data_size when uncompressed) */
  uint64_t parent_hash;       /* header_hash of the parent image (incremental) or 0 */
  char parent[256];           /* incremental: the parent image's path (NUL terminated),
                                 relative to this image's directory unless absolute */
  uint32_t chain_length;      /* 1 for a full image, parent's + 1 for an incremental one */
  uint32_t dirty_backend;     /* enum ocr_dirty_backend that produced the runs */
  char reserved[504];
  uint64_t header_hash; /* XXH3-64 of this struct with header_hash = 0 */
};

/* Each record: this header, then `size` bytes of payload. */
struct ocr_record_header {
  uint32_t type;    /* enum ocr_record_type */
  uint32_t version; /* 1 */
  uint64_t size;    /* payload bytes */
  uint64_t hash;    /* XXH3-64 of the payload */
};

enum ocr_record_type {
  OCR_REC_PROCESS = 1,    /* struct ocr_process_record + cwd + exe path */
  OCR_REC_SIGACTIONS = 2, /* struct ocr_sigaction_record */
  OCR_REC_THREAD = 3,     /* struct ocr_thread_record */
  OCR_REC_FILE = 4,       /* struct ocr_file_record + path */
  OCR_REC_REGION = 5,     /* struct ocr_region_record */
  OCR_REC_RUNS = 6,       /* struct ocr_run_record[] for one region */
  OCR_REC_FD = 7,         /* struct ocr_fd_record + path (+ pipe bytes, see below) */
  OCR_REC_END = 8         /* empty payload; must be last */
};

/* Callee-saved state captured by ocr_ctx_capture (context_switch.S). Resuming it
 * makes ocr_ctx_capture return 1 in that thread. */
struct ocr_jmp_context {
  uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
  uint32_t mxcsr;
  uint16_t fpu_cw;
  uint16_t pad;
};

/* Mirrors the kernel's struct prctl_mm_map (PR_SET_MM_MAP); auxv is stored inline. */
struct ocr_mm_map {
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint32_t auxv_size; /* bytes used in auxv */
  uint32_t pad;
  uint64_t auxv[64];
};

struct ocr_process_record {
  uint32_t umask;
  uint32_t personality;
  uint32_t tid_offset;        /* offset of the kernel tid inside glibc's struct pthread */
  int32_t rseq_offset;        /* glibc __rseq_offset (thread pointer relative) */
  uint32_t rseq_size;         /* length to register with the rseq syscall, 0 = none */
  uint32_t rseq_sig;          /* RSEQ_SIG */
  uint64_t vvar_start;        /* start of the kernel's [vvar] ... [vdso] group (0 = none) */
  uint64_t vdso_start;        /* [vdso] start */
  uint64_t vdso_group_end;    /* end of [vdso] */
  uint64_t vdso_hash;         /* XXH3-64 of the [vdso] bytes: same kernel build check */
  uint64_t restore_info_addr; /* address of ocr_restore_info in the runtime */
  struct ocr_mm_map mm;
  uint32_t cwd_len; /* bytes of cwd following this struct (no terminator) */
  uint32_t exe_len; /* bytes of exe path following cwd */
};

/* Kernel layout of struct sigaction for rt_sigaction. */
struct ocr_ksigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

struct ocr_sigaction_record {
  struct ocr_ksigaction act[64]; /* index = signal number - 1 */
  uint64_t blocked_process;      /* reserved */
};

#define OCR_THREAD_MAIN (1u << 0)    /* the thread group leader */
#define OCR_THREAD_RUNTIME (1u << 1) /* an ompi-cr runtime thread (the agent) */

struct ocr_thread_record {
  int32_t tid;    /* tid at checkpoint (informational) */
  uint32_t flags; /* OCR_THREAD_* */
  uint64_t fs_base;
  uint64_t gs_base;
  struct ocr_jmp_context ctx;
  uint64_t sigmask;     /* blocked signals while resuming */
  uint64_t robust_list; /* head registered with set_robust_list, 0 = none */
  uint64_t robust_len;
  uint64_t altstack_sp; /* sigaltstack */
  uint64_t altstack_size;
  int32_t altstack_flags;
  int32_t pad;
  char comm[16];          /* thread name (PR_GET_NAME), NUL padded */
  int32_t nice;           /* per-thread nice value (getpriority of the tid) */
  uint32_t cpumask_bytes; /* bytes of cpumask in use (sched_getaffinity), 0 = not captured */
  uint64_t cpumask[16];   /* CPU affinity, up to 1024 CPUs */
};

#define OCR_FILE_ELF (1u << 0) /* build_id is meaningful */

struct ocr_file_record {
  uint32_t id;    /* referenced by regions */
  uint32_t flags; /* OCR_FILE_* */
  uint64_t dev, ino, size;
  int64_t mtime_sec, mtime_nsec;
  uint32_t mode;
  uint32_t build_id_len;
  uint8_t build_id[OCR_MAX_BUILD_ID];
  uint32_t path_len; /* bytes of path following this struct */
  uint32_t pad;
};

enum ocr_region_kind {
  OCR_REGION_ANON_PRIVATE = 1, /* restored as private anonymous memory + saved pages */
  OCR_REGION_FILE_PRIVATE = 2, /* mapped from its file, saved (copied-on-write) pages overlaid */
  OCR_REGION_FILE_SHARED = 3,  /* mapped shared from its file; no pages saved */
  OCR_REGION_ANON_SHARED = 4,  /* shared anonymous (or deleted file); all present pages saved */
  OCR_REGION_SKIPPED = 5       /* not restored: runtime scratch, device, kernel special */
};

#define OCR_REGION_GROWSDOWN (1u << 0)
#define OCR_REGION_HEAP (1u << 1)  /* [heap] */
#define OCR_REGION_STACK (1u << 2) /* [stack] */
/* Incremental images: the region was tracked since the parent image; its runs may be
 * OCR_RUN_INHERITED. A region without this flag is complete in this image. */
#define OCR_REGION_TRACKED (1u << 3)

struct ocr_region_record {
  uint64_t start, end;
  uint32_t prot;    /* PROT_* */
  uint32_t kind;    /* enum ocr_region_kind */
  uint32_t flags;   /* OCR_REGION_* */
  uint32_t file_id; /* ocr_file_record.id when file backed */
  uint64_t file_offset;
  uint32_t skip_reason; /* for OCR_REGION_SKIPPED */
  uint32_t nruns;       /* runs in the OCR_REC_RUNS record that follows (may be 0) */
};

/* Pages of a region that the image accounts for. A page of a region covered by no run is
 * untouched: zero in anonymous memory, the file's bytes in a file mapping.
 * In an incremental image a run may say "these pages exist but were not written since the
 * parent": data_offset == OCR_RUN_INHERITED, hash == 0. Their bytes are wherever the parent
 * chain has them (the parent's own runs, recursively); pages the parent does not account
 * for are untouched there too. */
#define OCR_RUN_INHERITED UINT64_MAX
struct ocr_run_record {
  uint64_t addr; /* page aligned, inside the region */
  uint64_t npages;
  uint64_t data_offset; /* absolute file offset of the bytes, or OCR_RUN_INHERITED */
  uint64_t hash;        /* XXH3-64 of npages * OCR_PAGE_SIZE bytes (0 when inherited) */
};

/* OCR_FD_PIPE: an end of a pipe whose two ends are both open in the process. `ino`
 * names the pipe, `offset` holds its capacity (F_GETPIPE_SZ) and `size` the bytes that
 * were buffered in it; those bytes follow the path in the record of exactly one end per
 * pipe (the first read end listed), every other record of that pipe has size 0. Pipes
 * with an end outside the process are OCR_FD_UNSUPPORTED. */
enum ocr_fd_kind {
  OCR_FD_REGULAR = 1,
  OCR_FD_DIRECTORY = 2,
  OCR_FD_CHARDEV = 3,
  OCR_FD_UNSUPPORTED = 4,
  OCR_FD_PIPE = 5
};
#define OCR_MAX_PIPE_BYTES (1u << 20) /* the kernel's default pipe-max-size */

struct ocr_fd_record {
  int32_t fd;
  uint32_t kind;     /* enum ocr_fd_kind */
  uint32_t flags;    /* open flags from F_GETFL */
  uint32_t fd_flags; /* FD_CLOEXEC */
  int64_t offset;    /* file offset; -1 when the descriptor has none (tty, pipe, socket) */
  uint64_t size;     /* size at checkpoint (regular files) */
  uint64_t dev, ino;
  uint32_t path_len; /* bytes of path (readlink of /proc/self/fd/N) following */
  uint32_t pad;
};

/* Written by the restorer into the restored runtime (at process_record.restore_info_addr)
 * so that the runtime can release the restorer's memory and knows it was restored. */
struct ocr_restore_info {
  uint64_t magic; /* OCR_RESTORE_INFO_MAGIC once restored */
  uint64_t hole_start;
  uint64_t hole_size;
  uint64_t generation;  /* incremented on every restore */
  int32_t brk_restored; /* 1 if PR_SET_MM_MAP succeeded */
  int32_t exe_restored;
  /* The image restored from: the parent of the next incremental image. */
  uint64_t image_hash;
  uint32_t chain_length;
  uint32_t pad;
  char image_path[OCR_MAX_PATH];
  /* MPI ranks restarted by ompi-restart: the channel file of their ompi-cr-proxy
   * (docs/proxy.md); empty otherwise. */
  char proxy_channel[128];
};
#define OCR_RESTORE_INFO_MAGIC 0x4f43525245535452ull /* "OCRRESTR" */

#ifdef __cplusplus
}
#endif
#endif
