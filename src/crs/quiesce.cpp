// Thread quiescence (see quiesce.h). Runs in signal handlers and in the agent while
// application threads may hold any lock: raw syscalls and atomics only.
#include "crs/quiesce.h"

#include <asm/prctl.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "hints/hints_internal.h"

namespace ocr {
namespace {

struct QuiesceState {
  ThreadSlot slots[kMaxThreadSlots] = {};
  std::atomic<uint32_t> nslots{0};
  std::atomic<uint32_t> acks{0};
  std::atomic<uint32_t> release_gen{0};
  std::atomic<uint32_t> restored{0};
  std::atomic<int> active{0};
  int signo = 0;
};
constinit QuiesceState g_q;

long futex(std::atomic<uint32_t>* addr, int op, uint32_t val, const timespec* ts) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), op, val, ts, nullptr, 0);
}

void wake_all(std::atomic<uint32_t>* addr) {
  futex(addr, FUTEX_WAKE, INT32_MAX, nullptr);
}

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// Waits until *addr >= target or the deadline passes.
bool wait_at_least(std::atomic<uint32_t>* addr, uint32_t target, int64_t deadline_ms) {
  for (;;) {
    uint32_t v = addr->load();
    if (v >= target) return true;
    int64_t left = deadline_ms - now_ms();
    if (left <= 0) return false;
    timespec ts{left / 1000, (left % 1000) * 1000000};
    futex(addr, FUTEX_WAIT, v, &ts);
  }
}

void quiesce_handler(int, siginfo_t* si, void*) {
  int saved_errno = errno;
  // Only our own tgkill during a checkpoint parks a thread; a stray signal is ignored.
  if (si->si_code != SI_TKILL || si->si_pid != getpid()) {
    errno = saved_errno;
    return;
  }
  // Inside a hints API call the thread may hold the registry lock the agent needs: it
  // parks when the call returns (quiesce_redeliver_self).
  if (hints::tls_api_depth > 0) {
    hints::tls_quiesce_deferred = 1;
    errno = saved_errno;
    return;
  }
  // Take a slot before looking at `active`: an agent that gives up waits for
  // acks == nslots before releasing, so a thread that saw `active` set always gets woken.
  uint32_t idx = g_q.nslots.fetch_add(1);
  if (!g_q.active.load() || idx >= kMaxThreadSlots) {
    if (idx < kMaxThreadSlots) g_q.slots[idx].rec.tid = 0;  // not parked
    g_q.acks.fetch_add(1);
    wake_all(&g_q.acks);
    errno = saved_errno;
    return;
  }
  ocr_thread_record* rec = &g_q.slots[idx].rec;
  memset(rec, 0, sizeof *rec);
  capture_thread_self(rec);
  if (rec->tid == getpid()) rec->flags |= OCR_THREAD_MAIN;
  const uint32_t gen = g_q.release_gen.load();
  if (ocr_ctx_capture(&rec->ctx) == 0) {
    g_q.acks.fetch_add(1);
    wake_all(&g_q.acks);
  } else {
    // Restored process: announce that this thread is back, then wait like the others.
    g_q.restored.fetch_add(1);
    wake_all(&g_q.restored);
  }
  while (g_q.release_gen.load() == gen) futex(&g_q.release_gen, FUTEX_WAIT, gen, nullptr);
  errno = saved_errno;
}

bool is_exempt(pid_t tid, const pid_t* exempt, int n) {
  for (int i = 0; i < n; i++)
    if (exempt[i] == tid) return true;
  return false;
}

// Signals every thread in /proc/self/task not yet signalled. Returns how many were newly
// signalled, or -errno.
int signal_new_threads(pid_t* signalled, int* nsignalled, const pid_t* exempt, int nexempt) {
  int dfd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -errno;
  const pid_t pid = getpid();
  int fresh = 0;
  alignas(8) char buf[4096];
  for (;;) {
    long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      off += d->d_reclen;
      if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
      pid_t tid = static_cast<pid_t>(strtol(d->d_name, nullptr, 10));
      if (is_exempt(tid, exempt, nexempt) || is_exempt(tid, signalled, *nsignalled)) continue;
      if (*nsignalled >= static_cast<int>(kMaxThreadSlots)) {
        close(dfd);
        return -E2BIG;
      }
      if (syscall(SYS_tgkill, pid, tid, g_q.signo) == 0) {
        signalled[(*nsignalled)++] = tid;
        fresh++;
      }  // ESRCH: the thread ended meanwhile
    }
  }
  close(dfd);
  return fresh;
}

}  // namespace

void capture_thread_self(ocr_thread_record* rec) {
  rec->tid = static_cast<int32_t>(syscall(SYS_gettid));
  unsigned long base = 0;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &base);
  rec->fs_base = base;
  base = 0;
  syscall(SYS_arch_prctl, ARCH_GET_GS, &base);
  rec->gs_base = base;
  void* head = nullptr;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, 0, &head, &len) == 0) {
    rec->robust_list = reinterpret_cast<uint64_t>(head);
    rec->robust_len = len;
  }
  stack_t ss;
  if (sigaltstack(nullptr, &ss) == 0) {
    rec->altstack_sp = reinterpret_cast<uint64_t>(ss.ss_sp);
    rec->altstack_size = ss.ss_size;
    rec->altstack_flags = ss.ss_flags & ~SS_ONSTACK;
  } else {
    rec->altstack_flags = SS_DISABLE;
  }
  uint64_t mask = 0;
  syscall(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &mask, 8);
  rec->sigmask = mask;
  prctl(PR_GET_NAME, rec->comm, 0, 0, 0);
  // Per-thread scheduling attributes. getpriority's raw return is 20 - nice.
  long prio = syscall(SYS_getpriority, PRIO_PROCESS, 0);
  rec->nice = prio >= 0 ? static_cast<int32_t>(20 - prio) : 0;
  long n = syscall(SYS_sched_getaffinity, 0, sizeof rec->cpumask, rec->cpumask);
  rec->cpumask_bytes = n > 0 ? static_cast<uint32_t>(n) : 0;
}

int quiesce_install(int signo) {
  g_q.signo = signo;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = quiesce_handler;
  // SA_RESTART: a system call the thread was in restarts transparently on continue; in a
  // restored process the same frame makes it re-issue the call.
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);
  return sigaction(signo, &sa, nullptr) == 0 ? 0 : -errno;
}

int quiesce_all(const pid_t* exempt, int nexempt, int timeout_ms, char* err, size_t errcap) {
  static pid_t signalled[kMaxThreadSlots];
  int nsignalled = 0;
  g_q.nslots.store(0);
  g_q.acks.store(0);
  g_q.restored.store(0);
  g_q.active.store(1);
  const int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    int fresh = signal_new_threads(signalled, &nsignalled, exempt, nexempt);
    if (fresh < 0) {
      snprintf(err, errcap, "cannot list the process's threads: %s", strerror(-fresh));
      break;
    }
    // A thread that was already on its way out (glibc blocks all signals before a thread
    // ends) never answers: stop counting it once it is gone.
    bool all_stopped = false;
    int gone = 0;
    for (;;) {
      const uint32_t want = static_cast<uint32_t>(nsignalled - gone);
      const int64_t slice = now_ms() + 20;
      if (wait_at_least(&g_q.acks, want, slice < deadline ? slice : deadline)) {
        all_stopped = true;
        break;
      }
      if (now_ms() >= deadline) break;
      gone = 0;
      for (int i = 0; i < nsignalled; i++)
        if (syscall(SYS_tgkill, getpid(), signalled[i], 0) != 0 && errno == ESRCH) gone++;
    }
    if (!all_stopped) {
      snprintf(err, errcap,
               "only %u of %d threads stopped within %d ms (a thread blocking signal %d?)",
               g_q.acks.load(), nsignalled - gone, timeout_ms, g_q.signo);
      break;
    }
    if (fresh == 0) {
      if (g_q.nslots.load() > kMaxThreadSlots) {
        snprintf(err, errcap, "more than %u threads", kMaxThreadSlots);
        break;
      }
      return static_cast<int>(g_q.nslots.load());
    }
  }
  // Failure: late arrivals see active == 0 and return at once; whoever already took a slot
  // is parked (or about to be) before the release.
  g_q.active.store(0);
  wait_at_least(&g_q.acks, g_q.nslots.load(), now_ms() + 1000);
  quiesce_release();
  return -1;
}

void quiesce_redeliver_self() {
  if (g_q.active.load()) syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), g_q.signo);
}

void quiesce_release() {
  g_q.active.store(0);
  g_q.release_gen.fetch_add(1);
  wake_all(&g_q.release_gen);
}

bool quiesce_wait_restored(uint32_t expected, int timeout_ms) {
  return wait_at_least(&g_q.restored, expected, now_ms() + timeout_ms);
}

const ThreadSlot* quiesce_slots(uint32_t* n) {
  uint32_t v = g_q.nslots.load();
  *n = v > kMaxThreadSlots ? kMaxThreadSlots : v;
  return g_q.slots;
}

}  // namespace ocr
