/* The innermost part of ompi-cr-restore: replaces the loader's address space with the
 * saved one and enters the saved threads.
 *
 * Runs after the loader has validated the whole image and has nothing left to decide.
 * It is built freestanding (no libc, no globals, no relocations; see check_blob.cmake),
 * copied into a hole that no saved region uses, and entered on a stack inside that hole.
 * From its first munmap on, nothing of the loader exists any more: only raw syscalls, the
 * plan (restore_plan.h) and already-open file descriptors. A failure past that point can
 * only be reported on fd 2 and end the process (exit code 125); the loader's validation
 * exists so that this never happens for a bad image.
 */
#include <stddef.h>
#include <stdint.h>

#include "crs/restore_plan.h"

/* x86_64 syscall numbers and constants, spelled out because no libc headers are used. */
enum {
  SYS_read_ = 0,
  SYS_write_ = 1,
  SYS_close_ = 3,
  SYS_lseek_ = 8,
  SYS_mmap_ = 9,
  SYS_mprotect_ = 10,
  SYS_munmap_ = 11,
  SYS_rt_sigprocmask_ = 14,
  SYS_pread64_ = 17,
  SYS_mremap_ = 25,
  SYS_madvise_ = 28,
  SYS_setpriority_ = 141,
  SYS_sched_setaffinity_ = 203,
  SYS_exit_ = 60,
  SYS_sigaltstack_ = 131,
  SYS_prctl_ = 157,
  SYS_arch_prctl_ = 158,
  SYS_gettid_ = 186,
  SYS_set_tid_address_ = 218,
  SYS_exit_group_ = 231,
  SYS_set_robust_list_ = 273,
  SYS_dup3_ = 292,
  SYS_rseq_ = 334,
  SYS_clone3_ = 435
};
#define PROT_READ_ 1
#define PROT_WRITE_ 2
#define MAP_FIXED_NOREPLACE_ 0x100000
#define MREMAP_MAYMOVE_ 1
#define MREMAP_FIXED_ 2
#define ARCH_SET_GS_ 0x1001
#define ARCH_SET_FS_ 0x1002
#define PR_SET_MM_ 35
#define PR_SET_MM_MAP_ 14
#define O_CLOEXEC_ 02000000
#define SS_DISABLE_ 2
#define EINTR_ 4
#define MADV_POPULATE_WRITE_ 23
#define TASK_TOP 0x7ffffffff000ull /* 47-bit user address space */

static inline long sys6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#define SYS1(n, a) sys6(n, (long)(a), 0, 0, 0, 0, 0)
#define SYS2(n, a, b) sys6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define SYS3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define SYS4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define SYS5(n, a, b, c, d, e) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

/* The compiler may emit calls to these for struct copies even when freestanding. */
__attribute__((visibility("hidden"))) void* memcpy(void* d, const void* s, size_t n) {
  unsigned char* dp = d;
  const unsigned char* sp = s;
  while (n--) *dp++ = *sp++;
  return d;
}
__attribute__((visibility("hidden"))) void* memset(void* d, int c, size_t n) {
  unsigned char* dp = d;
  while (n--) *dp++ = (unsigned char)c;
  return d;
}

static size_t str_len(const char* s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

static void put(const char* s) {
  SYS3(SYS_write_, 2, s, str_len(s));
}

static void put_hex(uint64_t v) {
  char buf[19];
  buf[0] = '0';
  buf[1] = 'x';
  for (int i = 0; i < 16; i++) {
    unsigned nib = (unsigned)(v >> (60 - 4 * i)) & 0xf;
    buf[2 + i] = (char)(nib < 10 ? '0' + nib : 'a' + nib - 10);
  }
  buf[18] = 0;
  put(buf);
}

static void put_dec(uint64_t v) {
  char buf[21];
  int i = 20;
  buf[i] = 0;
  do {
    buf[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  put(buf + i);
}

__attribute__((noreturn)) static void fail(const char* what, uint64_t addr, long err) {
  put("ompi-cr-restore: restore failed after the address space was replaced: ");
  put(what);
  put(" at ");
  put_hex(addr);
  put(" (errno ");
  put_dec((uint64_t)-err);
  put(")\n");
  for (;;) SYS1(SYS_exit_group_, 125);
}

static void* at(struct ocr_plan* p, uint64_t off) {
  return (char*)p + off;
}

static int overlaps(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1) {
  return a0 < b1 && b0 < a1;
}

/* Unmaps every user mapping except the hole (this code, the plan, the stacks) and the
 * kernel's special mappings, which are moved rather than recreated. */
static void unmap_loader(struct ocr_plan* p) {
  uint64_t keep[8][2];
  unsigned n = 0;
  keep[n][0] = p->hole_start;
  keep[n][1] = p->hole_start + p->hole_size;
  n++;
  struct ocr_plan_special* sp = at(p, p->specials_off);
  for (unsigned i = 0; i < p->nspecials && n < 8; i++, n++) {
    keep[n][0] = sp[i].cur_start;
    keep[n][1] = sp[i].cur_end;
  }
  for (unsigned i = 1; i < n; i++) /* insertion sort by start */
    for (unsigned j = i; j > 0 && keep[j][0] < keep[j - 1][0]; j--) {
      uint64_t s = keep[j][0], e = keep[j][1];
      keep[j][0] = keep[j - 1][0];
      keep[j][1] = keep[j - 1][1];
      keep[j - 1][0] = s;
      keep[j - 1][1] = e;
    }
  uint64_t cur = 0;
  for (unsigned i = 0; i < n; i++) {
    if (keep[i][0] > cur) SYS2(SYS_munmap_, cur, keep[i][0] - cur);
    if (keep[i][1] > cur) cur = keep[i][1];
  }
  if (cur < TASK_TOP) SYS2(SYS_munmap_, cur, TASK_TOP - cur);
}

/* Moves [vvar] [vvar_vclock] [vdso] to the addresses the restored program's libc has
 * cached. Goes through a temporary spot when the old and new places overlap. */
static void move_specials(struct ocr_plan* p) {
  struct ocr_plan_special* sp = at(p, p->specials_off);
  int clash = 0;
  for (unsigned i = 0; i < p->nspecials; i++)
    for (unsigned j = 0; j < p->nspecials; j++) {
      uint64_t len = sp[i].cur_end - sp[i].cur_start;
      if (overlaps(sp[i].new_start, sp[i].new_start + len, sp[j].cur_start, sp[j].cur_end) &&
          sp[i].new_start != sp[i].cur_start)
        clash = 1;
    }
  if (clash) {
    uint64_t base = sp[0].cur_start;
    for (unsigned i = 0; i < p->nspecials; i++) {
      uint64_t len = sp[i].cur_end - sp[i].cur_start;
      uint64_t tmp = p->vdso_temp + (sp[i].cur_start - base);
      long r = SYS5(SYS_mremap_, sp[i].cur_start, len, len, MREMAP_MAYMOVE_ | MREMAP_FIXED_, tmp);
      if (r != (long)tmp) fail("moving the vdso aside", sp[i].cur_start, r);
      sp[i].cur_end = tmp + len;
      sp[i].cur_start = tmp;
    }
  }
  for (unsigned i = 0; i < p->nspecials; i++) {
    if (sp[i].cur_start == sp[i].new_start) continue;
    uint64_t len = sp[i].cur_end - sp[i].cur_start;
    long r = SYS5(SYS_mremap_, sp[i].cur_start, len, len, MREMAP_MAYMOVE_ | MREMAP_FIXED_,
                  sp[i].new_start);
    if (r != (long)sp[i].new_start) fail("moving the vdso", sp[i].new_start, r);
  }
}

static void read_fully(int fd, uint64_t addr, uint64_t len, uint64_t off) {
  while (len) {
    uint64_t chunk = len > 0x40000000ull ? 0x40000000ull : len;
    long r = sys6(SYS_pread64_, fd, (long)addr, (long)chunk, (long)off, 0, 0);
    if (r == -EINTR_) continue;
    if (r <= 0) fail("reading page data", addr, r == 0 ? -5 /* EIO: short image */ : r);
    addr += (uint64_t)r;
    off += (uint64_t)r;
    len -= (uint64_t)r;
  }
}

static void map_regions(struct ocr_plan* p) {
  struct ocr_plan_region* rg = at(p, p->regions_off);
  struct ocr_plan_run* runs = at(p, p->runs_off);
  for (unsigned i = 0; i < p->nregions; i++) {
    struct ocr_plan_region* r = &rg[i];
    uint64_t len = r->end - r->start;
    uint32_t prot_now = r->prot | (r->nruns ? (PROT_READ_ | PROT_WRITE_) : 0);
    long m = sys6(SYS_mmap_, (long)r->start, (long)len, prot_now,
                  (long)(r->mmap_flags | MAP_FIXED_NOREPLACE_), r->fd, (long)r->file_offset);
    if (m != (long)r->start) fail("mapping a region", r->start, m < 0 ? m : -17);
    for (uint64_t k = 0; k < r->nruns; k++) {
      struct ocr_plan_run* run = &runs[r->first_run + k];
      /* One call that faults in the whole run is much cheaper than a page fault per 4 KiB
       * during the read; failure (old kernel) only costs that speed. */
      SYS3(SYS_madvise_, run->addr, run->len, MADV_POPULATE_WRITE_);
      read_fully(run->fd, run->addr, run->len, run->image_offset);
    }
    if (prot_now != r->prot) {
      long e = SYS3(SYS_mprotect_, r->start, len, r->prot);
      if (e) fail("protecting a region", r->start, e);
    }
  }
}

/* brk, start_stack, arg/env ranges, auxv and /proc/self/exe of the restored program. */
static void restore_mm(struct ocr_plan* p, struct ocr_restore_info* info) {
  if (!p->have_mm_map) return;
  p->mm.auxv = (uint64_t)(uintptr_t)p->auxv;
  p->mm.exe_fd = (uint32_t)p->exe_fd;
  long r = -1;
  if (p->exe_fd >= 0) {
    r = SYS5(SYS_prctl_, PR_SET_MM_, PR_SET_MM_MAP_, &p->mm, sizeof(p->mm), 0);
    if (r == 0) info->exe_restored = 1;
  }
  if (r != 0) {
    p->mm.exe_fd = (uint32_t)-1;
    r = SYS5(SYS_prctl_, PR_SET_MM_, PR_SET_MM_MAP_, &p->mm, sizeof(p->mm), 0);
  }
  info->brk_restored = r == 0;
}

static void restore_fds(struct ocr_plan* p) {
  struct ocr_plan_fd* fds = at(p, p->fds_off);
  for (unsigned i = 0; i < p->nfds; i++) {
    long r = SYS3(SYS_dup3_, fds[i].tmp_fd, fds[i].target_fd, fds[i].cloexec ? O_CLOEXEC_ : 0);
    if (r < 0) fail("installing a file descriptor", (uint64_t)fds[i].target_fd, r);
    if (fds[i].offset >= 0) SYS3(SYS_lseek_, fds[i].target_fd, fds[i].offset, 0);
  }
  int32_t* cl = at(p, p->close_off);
  for (unsigned i = 0; i < p->nclose; i++) SYS1(SYS_close_, cl[i]);
}

/* Makes ocr_ctx_capture return 1 in this thread, with its callee-saved registers, stack
 * and FP control state as they were captured. */
__attribute__((noreturn)) static void resume_context(const struct ocr_jmp_context* c) {
  __asm__ volatile(
      "ldmxcsr 64(%%rdi)\n\t"
      "fldcw 68(%%rdi)\n\t"
      "mov 0(%%rdi), %%rbx\n\t"
      "mov 8(%%rdi), %%rbp\n\t"
      "mov 16(%%rdi), %%r12\n\t"
      "mov 24(%%rdi), %%r13\n\t"
      "mov 32(%%rdi), %%r14\n\t"
      "mov 40(%%rdi), %%r15\n\t"
      "mov 48(%%rdi), %%rsp\n\t"
      "mov 56(%%rdi), %%rcx\n\t"
      "mov $1, %%eax\n\t"
      "jmp *%%rcx\n\t"
      :
      : "D"(c)
      : "memory");
  __builtin_unreachable();
}

/* Per-thread kernel state that only the thread itself can set, then the jump. */
__attribute__((noreturn)) static void enter_thread(struct ocr_plan* p, struct ocr_plan_thread* th,
                                                   int is_main) {
  const struct ocr_thread_record* t = &th->rec;
  if (is_main) {
    long r = SYS2(SYS_arch_prctl_, ARCH_SET_FS_, t->fs_base);
    if (r) fail("setting the thread pointer", t->fs_base, r);
    int32_t* tidp = (int32_t*)(uintptr_t)(t->fs_base + p->tid_offset);
    *tidp = (int32_t)SYS1(SYS_gettid_, 0);
    SYS1(SYS_set_tid_address_, tidp);
  }
  if (t->gs_base) SYS2(SYS_arch_prctl_, ARCH_SET_GS_, t->gs_base);
  if (t->cpumask_bytes &&
      t->cpumask_bytes <= sizeof t->cpumask) /* fails harmlessly if CPUs are gone */
    SYS3(SYS_sched_setaffinity_, 0, t->cpumask_bytes, t->cpumask);
  /* Always: a thread cloned here inherits the restorer's nice value, not its own. Lowering
   * it without privilege fails (EACCES) and the thread keeps the restorer's. */
  SYS3(SYS_setpriority_, 0 /* PRIO_PROCESS */, 0 /* this thread */, t->nice);
  if (t->comm[0]) {
    char name[17];
    for (int i = 0; i < 16; i++) name[i] = t->comm[i];
    name[16] = 0;
    SYS2(SYS_prctl_, 15 /* PR_SET_NAME */, name);
  }
  if (t->robust_list) SYS2(SYS_set_robust_list_, t->robust_list, t->robust_len);
  if (p->rseq_size) /* glibc's per-thread rseq area; a failure only costs sched_getcpu speed */
    SYS4(SYS_rseq_, t->fs_base + (uint64_t)(int64_t)p->rseq_offset, p->rseq_size, 0, p->rseq_sig);
  if (t->altstack_sp && !(t->altstack_flags & SS_DISABLE_)) {
    struct {
      uint64_t sp;
      int32_t flags;
      int32_t pad;
      uint64_t size;
    } ss = {t->altstack_sp, 0, 0, t->altstack_size};
    SYS2(SYS_sigaltstack_, &ss, 0);
  }
  SYS4(SYS_rt_sigprocmask_, 2 /* SIG_SETMASK */, &t->sigmask, 0, 8);
  resume_context(&t->ctx);
}

/* Kernel layout of struct clone_args (clone3). */
struct clone_args_ {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
  uint64_t set_tid, set_tid_size, cgroup;
};

/* clone3() for a thread whose first code is fn(arg): the caller stores fn and arg at the
 * top of the child's stack (args->stack + args->stack_size), the child pops and calls them.
 * Returns in the parent only. */
long ocr_blob_clone3(struct clone_args_* args, uint64_t size);
__asm__(
    ".pushsection .text\n"
    ".type ocr_blob_clone3,@function\n"
    "ocr_blob_clone3:\n"
    "  mov $435, %eax\n"
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jnz 1f\n"
    "  xor %ebp, %ebp\n"
    "  pop %rax\n"
    "  pop %rdi\n"
    "  call *%rax\n"
    "  mov $60, %eax\n"
    "  xor %edi, %edi\n"
    "  syscall\n"
    "  hlt\n"
    "1:\n"
    "  ret\n"
    ".popsection\n");

static void thread_start(void* arg) {
  struct ocr_plan_thread* th = arg;
  enter_thread((struct ocr_plan*)(uintptr_t)th->plan_addr, th, 0);
}

#define CLONE_THREAD_FLAGS                                                                 \
  (0x00000100 /*VM*/ | 0x00000200 /*FS*/ | 0x00000400 /*FILES*/ | 0x00000800 /*SIGHAND*/ | \
   0x00010000 /*THREAD*/ | 0x00040000 /*SYSVSEM*/ | 0x00080000 /*SETTLS*/ |                \
   0x00100000 /*PARENT_SETTID*/ | 0x00200000 /*CHILD_CLEARTID*/)

__attribute__((section(".text.entry"), noreturn)) void ocr_blob_entry(struct ocr_plan* p) {
  if (p->magic != OCR_PLAN_MAGIC || p->version != OCR_PLAN_VERSION)
    fail("plan is not one this restorer understands", (uint64_t)(uintptr_t)p, -22);

  unmap_loader(p);
  move_specials(p);
  map_regions(p);

  struct ocr_restore_info* info = (struct ocr_restore_info*)(uintptr_t)p->restore_info_addr;
  info->brk_restored = 0;
  info->exe_restored = 0;
  restore_mm(p, info);
  restore_fds(p);
  info->hole_start = p->hole_start;
  info->hole_size = p->hole_size;
  info->generation = p->generation;
  info->image_hash = p->image_hash;
  info->chain_length = p->chain_length;
  for (unsigned i = 0; i < sizeof info->image_path; i++) {
    info->image_path[i] = p->image_path[i];
    if (!p->image_path[i]) break;
  }
  for (unsigned i = 0; i < sizeof info->proxy_channel; i++) {
    info->proxy_channel[i] = p->proxy_channel[i];
    if (!p->proxy_channel[i]) break;
  }
  info->magic = OCR_RESTORE_INFO_MAGIC;

  if (p->verbose) {
    put("ompi-cr-restore: address space restored (");
    put_dec(p->nregions);
    put(" regions), starting ");
    put_dec(p->nthreads);
    put(" threads\n");
  }

  /* Each thread gets its old thread id back when it is free (and we may choose ids):
   * glibc keeps owner tids inside mutexes and rwlocks, and programs keep gettid() values. */
  struct ocr_plan_thread* th = at(p, p->threads_off);
  for (unsigned i = 0; i < p->nthreads; i++) {
    if (i == p->main_index) continue;
    th[i].plan_addr = (uint64_t)(uintptr_t)p;
    int32_t* tidp = (int32_t*)(uintptr_t)(th[i].rec.fs_base + p->tid_offset);
    uint64_t top = (th[i].blob_stack_top & ~15ull) - 16;
    ((uint64_t*)(uintptr_t)top)[0] = (uint64_t)(uintptr_t)thread_start;
    ((uint64_t*)(uintptr_t)top)[1] = (uint64_t)(uintptr_t)&th[i];
    int64_t want = th[i].rec.tid;
    struct clone_args_ ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_THREAD_FLAGS;
    ca.child_tid = (uint64_t)(uintptr_t)tidp;
    ca.parent_tid = (uint64_t)(uintptr_t)tidp;
    ca.stack = top - 4096; /* the blob's code needs little; the slot is larger */
    ca.stack_size = 4096;
    ca.tls = th[i].rec.fs_base;
    if (p->keep_tids) {
      ca.set_tid = (uint64_t)(uintptr_t)&want;
      ca.set_tid_size = 1;
    }
    long r = ocr_blob_clone3(&ca, sizeof ca);
    if (r < 0 && p->keep_tids) { /* that id is taken: a new one it is */
      ca.set_tid = 0;
      ca.set_tid_size = 0;
      r = ocr_blob_clone3(&ca, sizeof ca);
    }
    if (r < 0) fail("creating a thread", th[i].rec.fs_base, r);
  }
  enter_thread(p, &th[p->main_index], 1);
}
