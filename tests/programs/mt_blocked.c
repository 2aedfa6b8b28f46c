/* mt_blocked: every step leaves threads blocked in the kernel, prints its line, and then
 * sleeps --step-ms, so that a checkpoint requested after a line finds them blocked.
 *
 * Blockers (one thread each, created once), armed every step and released at the start
 * of the next one:
 *   cond       pthread_cond_wait, no timeout
 *   timed-rt   pthread_cond_timedwait, CLOCK_REALTIME deadline an hour away
 *   timed-mono pthread_cond_timedwait on a CLOCK_MONOTONIC condvar, an hour away
 *   holder     holds a mutex (and, with --tid-locks 1, a recursive, an error-checking,
 *              a robust and a priority-inheritance mutex) while blocked in sem_wait
 *   mutex      pthread_mutex_lock on the mutex the holder holds
 *   sleep-rel  nanosleep(3 * step-ms) in a loop on the remaining time (EINTR-robust)
 *   sleep-abs  clock_nanosleep(TIMER_ABSTIME) / usleep loop to a deadline
 *   altstack   a SIGUSR1 handler (SA_ONSTACK) running on the thread's sigaltstack,
 *              blocked in sem_wait inside the handler
 *   joiner     pthread_join of a thread that is itself blocked in sem_wait
 *   barrier    pthread_barrier_wait (2 parties; main is the second)
 *   rwlock     (--tid-locks 1) pthread_rwlock_rdlock while main holds the write lock
 *   pipe       (--pipe 1) read() on a pipe; a writer thread, blocked in sem_wait, writes
 *              the data when released
 *   dl         (--dl-lock 1) inside a dl_iterate_phdr() callback (glibc holds its
 *              recursive loader lock), blocked in sem_wait
 * --tid-locks 1 adds the objects in which glibc records the owner's kernel thread id
 * (and decides on unlock by comparing it with the caller's): they must keep working when
 * the owner is checkpointed and restored while holding them.
 * Before printing the step line, main checks in /proc/self/task/<tid>/syscall that each
 * blocker is inside the expected system call on the expected object (so "blocked at the
 * checkpoint" is a fact, not a hope). Results fold into the digest; nothing depends on
 * timing. A blocker that does not block or does not come back within 20 s is reported
 * and the program exits with 97 (a hang made visible).
 */
#include "mt_common.h"

#include <link.h>
#include <semaphore.h>
#include <signal.h>

#define WAIT_LIMIT_S 20

enum {
  B_COND,
  B_TIMED_RT,
  B_TIMED_MONO,
  B_HOLDER,
  B_MUTEX,
  B_SLEEP_REL,
  B_SLEEP_ABS,
  B_ALT,
  B_JOINER,
  B_BARRIER,
  B_RWLOCK,
  B_PIPE_R,
  B_PIPE_W,
  B_DL,
  NB
};
static const char* const bname[NB] = {
    "cond",     "timed-rt", "timed-mono", "holder", "mutex",       "sleep-rel",   "sleep-abs",
    "altstack", "joiner",   "barrier",    "rwlock", "pipe-reader", "pipe-writer", "dl"};

struct blocker {
  pthread_t th;
  sem_t go;
  atomic_int ready_phase; /* set just before the blocking call */
  atomic_int tid;
  atomic_long done_phase;
  long phase;
  uint64_t result;
  int enabled;
};
static struct blocker b[NB];
static atomic_int stop;
static sem_t done_sem;
static long sleep_ms;
static int tid_locks, use_pipe, use_dl;

/* objects the blockers wait on */
static pthread_mutex_t cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c_plain = PTHREAD_COND_INITIALIZER, c_rt = PTHREAD_COND_INITIALIZER, c_mono;
static long released[NB]; /* under cm: phase released for the condvar blockers */
static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t m_rec, m_err, m_rob, m_pi;
static sem_t hold_sem, alt_sem, join_sem, pipe_sem, dl_sem;
static pthread_barrier_t bar2;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_t joinee;
static int pfd[2] = {-1, -1};
static unsigned char* altstack;
#define ALTSTACK_SIZE (64u << 10)
static atomic_int in_handler;
static uint64_t handler_result;

static void mark_ready(int i, long phase) {
  atomic_store(&b[i].tid, mt_gettid());
  atomic_store(&b[i].ready_phase, (int)phase);
}

/* ---- blocking actions, one per kind; each returns the phase's result ---- */

static uint64_t do_cond(int i, long phase, pthread_cond_t* c, int timed, clockid_t clk) {
  pthread_mutex_lock(&cm);
  mark_ready(i, phase);
  while (released[i] < phase) {
    if (!timed) {
      pthread_cond_wait(c, &cm);
    } else {
      struct timespec dl;
      clock_gettime(clk, &dl);
      dl.tv_sec += 3600;
      int e = pthread_cond_timedwait(c, &cm, &dl);
      MT_CHECK(e == 0, "%s: pthread_cond_timedwait = %d (%s)", bname[i], e, strerror(e));
    }
  }
  pthread_mutex_unlock(&cm);
  return mt_fold((uint64_t)phase, (uint64_t)i);
}

static int tid_locks_ok = 1;
static uint64_t do_holder(int i, long phase) {
  int e = pthread_mutex_lock(&mx);
  MT_CHECK(e == 0, "holder: lock = %d", e);
  int held = 0;
  if (tid_locks) {
    /* trylock only: a mutex glibc thinks someone else owns must not hang the test */
    int e1 = pthread_mutex_trylock(&m_rec), e2 = e1 ? e1 : pthread_mutex_trylock(&m_rec);
    int e3 = pthread_mutex_trylock(&m_err), e4 = pthread_mutex_trylock(&m_rob),
        e5 = pthread_mutex_trylock(&m_pi);
    MT_CHECK(!e1 && !e2 && !e3 && !e4 && !e5,
             "holder: phase %ld: trylock of recursive/errorcheck/robust/PI = %d %d %d %d %d", phase,
             e1, e2, e3, e4, e5);
    held = !e1 && !e2 && !e3 && !e4 && !e5;
  }
  mark_ready(i, phase);
  while (sem_wait(&hold_sem) != 0) {
  }
  if (held) {
    /* still the owner after the wait (across a checkpoint/restore)? */
    int e0 = pthread_mutex_trylock(&m_rec); /* recursive: the owner gets it again */
    int u0 = e0 ? -1 : pthread_mutex_unlock(&m_rec);
    int u1 = pthread_mutex_unlock(&m_rec), u2 = pthread_mutex_unlock(&m_rec);
    int u3 = pthread_mutex_unlock(&m_err), u4 = pthread_mutex_unlock(&m_rob),
        u5 = pthread_mutex_unlock(&m_pi);
    MT_CHECK(!e0 && !u0 && !u1 && !u2 && !u3 && !u4 && !u5,
             "holder: phase %ld: owner-checked mutexes after the wait: relock(recursive) = %d, "
             "unlock recursive = %d %d %d, "
             "errorcheck = %d, robust = %d, PI = %d (EPERM = %d: glibc no longer sees this thread "
             "as the owner)",
             phase, e0, u0, u1, u2, u3, u4, u5, EPERM);
    tid_locks_ok = !e0 && !u0 && !u1 && !u2 && !u3 && !u4 && !u5;
  }
  pthread_mutex_unlock(&mx);
  return mt_fold((uint64_t)phase, 0x401d);
}

static uint64_t do_mutex(int i, long phase) {
  mark_ready(i, phase);
  int e = pthread_mutex_lock(&mx);
  MT_CHECK(e == 0, "mutex: lock = %d", e);
  pthread_mutex_unlock(&mx);
  return mt_fold((uint64_t)phase, 0x3e7);
}

static uint64_t do_sleep_rel(int i, long phase) {
  struct timespec req = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L}, rem;
  mark_ready(i, phase);
  while (nanosleep(&req, &rem) != 0) {
    MT_CHECK(errno == EINTR, "sleep-rel: nanosleep: %s", strerror(errno));
    if (errno != EINTR) break;
    req = rem;
  }
  return mt_fold((uint64_t)phase, 0x51ee);
}

static uint64_t do_sleep_abs(int i, long phase) {
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  dl.tv_sec += sleep_ms / 1000;
  dl.tv_nsec += (sleep_ms % 1000) * 1000000L;
  if (dl.tv_nsec >= 1000000000L) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000L;
  }
  mark_ready(i, phase);
  int e;
  while ((e = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL)) == EINTR) {
  }
  MT_CHECK(e == 0, "sleep-abs: clock_nanosleep = %d", e);
  /* and a few usleep()s, which give up on EINTR: loop on the clock */
  struct timespec now, end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  end.tv_nsec += 3000000L;
  if (end.tv_nsec >= 1000000000L) {
    end.tv_sec++;
    end.tv_nsec -= 1000000000L;
  }
  do {
    usleep(1000);
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
  return mt_fold((uint64_t)phase, 0xab5);
}

static void usr1_handler(int sig, siginfo_t* si, void* uc) {
  (void)si;
  (void)uc;
  int saved = errno;
  char here;
  stack_t ss;
  int on_alt = &here >= (char*)altstack && &here < (char*)altstack + ALTSTACK_SIZE;
  int flags_ok = sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK) &&
                 ss.ss_sp == altstack && ss.ss_size == ALTSTACK_SIZE;
  atomic_store(&in_handler, 1);
  while (sem_wait(&alt_sem) != 0) {
  }
  /* after the wait (possibly in a restored process): still on the alternate stack */
  int flags_after =
      sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK) && ss.ss_sp == altstack;
  handler_result = mt_fold((uint64_t)sig, (uint64_t)(on_alt * 4 + flags_ok * 2 + flags_after));
  atomic_store(&in_handler, 0);
  errno = saved;
}

/* On the altstack thread, when it is armed again: what its handler saw in the previous
 * phase, and its own sigaltstack setting. */
static void altstack_checks(long phase) {
  if (phase > 1)
    MT_CHECK(handler_result == mt_fold(SIGUSR1, 7),
             "altstack: phase %ld: handler did not run on the sigaltstack "
             "throughout (result %#" PRIx64 ")",
             phase - 1, handler_result);
  stack_t ss;
  MT_CHECK(sigaltstack(NULL, &ss) == 0 && ss.ss_sp == altstack && ss.ss_size == ALTSTACK_SIZE &&
               !(ss.ss_flags & SS_ONSTACK) && !(ss.ss_flags & SS_DISABLE),
           "altstack: phase %ld: sigaltstack of the thread changed", phase);
}

static uint64_t do_joiner(int i, long phase) {
  mark_ready(i, phase);
  void* ret = NULL;
  int e = pthread_join(joinee, &ret);
  MT_CHECK(e == 0 && ret == (void*)(intptr_t)(phase * 3 + 1), "joiner: join = %d", e);
  return mt_fold((uint64_t)phase, (uint64_t)(uintptr_t)ret);
}

static void* joinee_main(void* arg) {
  while (sem_wait(&join_sem) != 0) {
  }
  return arg;
}

static uint64_t do_barrier(int i, long phase) {
  mark_ready(i, phase);
  int e = pthread_barrier_wait(&bar2);
  MT_CHECK(e == 0 || e == PTHREAD_BARRIER_SERIAL_THREAD, "barrier: %d", e);
  return mt_fold((uint64_t)phase, 0xba1);
}

static uint64_t do_rwlock(int i, long phase) {
  mark_ready(i, phase);
  int e = pthread_rwlock_rdlock(&rw);
  MT_CHECK(e == 0, "rwlock: rdlock = %d", e);
  if (!e) pthread_rwlock_unlock(&rw);
  return mt_fold((uint64_t)phase, 0x3d);
}

static uint64_t do_pipe_reader(int i, long phase) {
  uint64_t v = 0;
  mark_ready(i, phase);
  size_t got = 0;
  while (got < sizeof v) {
    ssize_t r = read(pfd[0], (char*)&v + got, sizeof v - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      mt_error("pipe-reader: phase %ld: read = %zd (%s)", phase, r,
               r < 0 ? strerror(errno) : "end of file");
      break;
    }
    got += (size_t)r;
  }
  MT_CHECK(got < sizeof v || v == mt_mix((uint64_t)phase), "pipe-reader: phase %ld: wrong data",
           phase);
  return mt_fold((uint64_t)phase, 0x919e);
}

static uint64_t do_pipe_writer(int i, long phase) {
  mark_ready(i, phase);
  while (sem_wait(&pipe_sem) != 0) {
  }
  uint64_t v = mt_mix((uint64_t)phase);
  ssize_t w = write(pfd[1], &v, sizeof v);
  MT_CHECK(w == (ssize_t)sizeof v, "pipe-writer: phase %ld: write = %zd (%s)", phase, w,
           w < 0 ? strerror(errno) : "short");
  return mt_fold((uint64_t)phase, 0x3717e);
}

static int dl_cb(struct dl_phdr_info* info, size_t size, void* data) {
  (void)info;
  (void)size;
  long* calls = data;
  if ((*calls)++ == 0) {
    mark_ready(B_DL, calls[1]);
    while (sem_wait(&dl_sem) != 0) {
    }
  }
  return 0;
}

static uint64_t do_dl(int i, long phase) {
  (void)i;
  long st[2] = {0, phase};
  dl_iterate_phdr(dl_cb, st);
  return mt_fold((uint64_t)phase, st[0] > 0);
}

static void* blocker_main(void* arg) {
  struct blocker* me = arg;
  const int i = (int)(me - b);
  if (i == B_ALT) {
    stack_t ss = {.ss_sp = altstack, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL)) mt_die("sigaltstack");
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
  }
  for (;;) {
    while (sem_wait(&me->go) != 0) {
    }
    if (atomic_load(&stop)) break;
    long phase = ++me->phase;
    uint64_t r = 0;
    switch (i) {
      case B_COND:
        r = do_cond(i, phase, &c_plain, 0, CLOCK_REALTIME);
        break;
      case B_TIMED_RT:
        r = do_cond(i, phase, &c_rt, 1, CLOCK_REALTIME);
        break;
      case B_TIMED_MONO:
        r = do_cond(i, phase, &c_mono, 1, CLOCK_MONOTONIC);
        break;
      case B_HOLDER:
        r = do_holder(i, phase);
        break;
      case B_MUTEX:
        r = do_mutex(i, phase);
        break;
      case B_SLEEP_REL:
        r = do_sleep_rel(i, phase);
        break;
      case B_SLEEP_ABS:
        r = do_sleep_abs(i, phase);
        break;
      case B_ALT:
        /* the handler runs (and blocks) on top of this thread's wait for its next phase;
           here: check what it saw in the previous one */
        altstack_checks(phase);
        mark_ready(i, phase);
        r = phase;
        break;
      case B_JOINER:
        r = do_joiner(i, phase);
        break;
      case B_BARRIER:
        r = do_barrier(i, phase);
        break;
      case B_RWLOCK:
        r = do_rwlock(i, phase);
        break;
      case B_PIPE_R:
        r = do_pipe_reader(i, phase);
        break;
      case B_PIPE_W:
        r = do_pipe_writer(i, phase);
        break;
      case B_DL:
        r = do_dl(i, phase);
        break;
    }
    me->result = r;
    atomic_store(&me->done_phase, phase);
    if (i != B_ALT) sem_post(&done_sem);
  }
  return NULL;
}

/* ---- main's side ---- */

static void deadline_in(struct timespec* ts, int s) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += s;
}

/* Reads the system call a thread is blocked in: number and first argument. */
static int task_syscall(pid_t tid, long* nr, unsigned long* arg1) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  if (buf[0] < '0' || buf[0] > '9') return -1; /* "running" or "-1 ..." */
  char* end;
  *nr = strtol(buf, &end, 10);
  *arg1 = strtoul(end, NULL, 16);
  return 0;
}

/* Waits until blocker i, armed for `phase`, sits in system call `nr` with its first
 * argument in [lo, hi) (lo == hi: any argument). */
static void verify_blocked(int i, long phase, long nr, const void* lo, const void* hi) {
  for (int tries = 0; tries < WAIT_LIMIT_S * 1000; tries++) {
    if (atomic_load(&b[i].ready_phase) == phase) {
      long n;
      unsigned long a;
      if (task_syscall(atomic_load(&b[i].tid), &n, &a) == 0 && n == nr &&
          (lo == hi || (a >= (unsigned long)lo && a < (unsigned long)hi)))
        return;
    }
    mt_sleep_ms(1);
  }
  fprintf(stderr,
          "mt_blocked: blocker %s did not block in system call %ld within %d s (phase %ld)\n",
          bname[i], nr, WAIT_LIMIT_S, phase);
  exit(97);
}

static void wait_done(int n, const char* when) {
  for (int k = 0; k < n; k++) {
    struct timespec dl;
    deadline_in(&dl, WAIT_LIMIT_S);
    int r;
    while ((r = sem_timedwait(&done_sem, &dl)) != 0 && errno == EINTR) {
    }
    if (r != 0) {
      fprintf(stderr,
              "mt_blocked: %s: only %d of %d blockers came back within %d s; still blocked:", when,
              k, n, WAIT_LIMIT_S);
      for (int i = 0; i < NB; i++)
        if (b[i].enabled && i != B_ALT && atomic_load(&b[i].done_phase) != b[i].phase)
          fprintf(stderr, " %s", bname[i]);
      fprintf(stderr, "\n");
      exit(97);
    }
  }
}

static void arm(int i) {
  sem_post(&b[i].go);
}

int main(int argc, char** argv) {
  static const char* const names[4] = {"tid-locks", "pipe", "dl-lock", NULL};
  static const long defs[4] = {0, 0, 0, 0};
  mt_init(argc, argv, "mt_blocked", 30, 150, 1, names, defs);
  tid_locks = mt_opt.extra[0] != 0;
  use_pipe = mt_opt.extra[1] != 0;
  use_dl = mt_opt.extra[2] != 0;
  sleep_ms = 3 * mt_opt.step_ms;

  /* SIGUSR1 only for the altstack thread */
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = usr1_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigfillset(&sa.sa_mask);
  sigdelset(&sa.sa_mask,
            SIGRTMAX - 3); /* not needed by the runtime, but be explicit: no blanket blocking */
  sigaction(SIGUSR1, &sa, NULL);
  altstack = aligned_alloc(4096, ALTSTACK_SIZE);
  if (!altstack) mt_die("aligned_alloc");

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c_mono, &ca);
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&m_rec, &ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&m_err, &ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_NORMAL);
  pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&m_rob, &ma);
  pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_STALLED);
  pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
  pthread_mutex_init(&m_pi, &ma);
  sem_init(&done_sem, 0, 0);
  sem_init(&hold_sem, 0, 0);
  sem_init(&alt_sem, 0, 0);
  sem_init(&join_sem, 0, 0);
  sem_init(&pipe_sem, 0, 0);
  sem_init(&dl_sem, 0, 0);
  pthread_barrier_init(&bar2, NULL, 2);
  if (use_pipe && pipe2(pfd, O_CLOEXEC)) mt_die("pipe2");

  for (int i = 0; i < NB; i++) {
    b[i].enabled = !((i == B_PIPE_R || i == B_PIPE_W) && !use_pipe) && !(i == B_DL && !use_dl) &&
                   !(i == B_RWLOCK && !tid_locks);
    if (!b[i].enabled) continue;
    sem_init(&b[i].go, 0, 0);
    errno = pthread_create(&b[i].th, NULL, blocker_main, &b[i]);
    if (errno) mt_die("pthread_create");
  }
  int nwait = 0; /* blockers main waits for on release (all but altstack) */
  for (int i = 0; i < NB; i++) nwait += b[i].enabled && i != B_ALT;

  uint64_t digest = mt_mix(31337);
  for (long step = 1; step <= mt_opt.steps; step++) {
    mt_wait_gate(step);
    uint64_t h = mt_fold(digest, (uint64_t)step);
    long prev = step - 1;
    if (prev > 0) { /* release the previous phase */
      pthread_mutex_lock(&cm);
      released[B_COND] = released[B_TIMED_RT] = released[B_TIMED_MONO] = prev;
      pthread_cond_broadcast(&c_plain);
      pthread_cond_broadcast(&c_rt);
      pthread_cond_broadcast(&c_mono);
      pthread_mutex_unlock(&cm);
      sem_post(&hold_sem); /* the holder unlocks, the mutex waiter gets it */
      sem_post(&alt_sem);  /* the handler returns */
      sem_post(&join_sem); /* the joinee ends, the joiner's join returns */
      int e = pthread_barrier_wait(&bar2);
      MT_CHECK(e == 0 || e == PTHREAD_BARRIER_SERIAL_THREAD, "main: barrier = %d", e);
      if (tid_locks) pthread_rwlock_unlock(&rw);
      if (use_pipe) sem_post(&pipe_sem);
      if (use_dl) sem_post(&dl_sem);
      wait_done(nwait, "release");
      for (int t = 0; t < 2000 && atomic_load(&in_handler); t++) mt_sleep_ms(1);
      MT_CHECK(!atomic_load(&in_handler), "altstack: handler did not return");
      h = mt_fold(h, handler_result);
      for (int i = 0; i < NB; i++)
        if (b[i].enabled && i != B_ALT) h = mt_fold(h, b[i].result);
    }
    if (step < mt_opt.steps) { /* arm this step's phase; every blocker checked in place */
      const long p = step;
      arm(B_COND);
      verify_blocked(B_COND, p, SYS_futex, &c_plain, &c_plain + 1);
      arm(B_TIMED_RT);
      verify_blocked(B_TIMED_RT, p, SYS_futex, &c_rt, &c_rt + 1);
      arm(B_TIMED_MONO);
      verify_blocked(B_TIMED_MONO, p, SYS_futex, &c_mono, &c_mono + 1);
      arm(B_HOLDER);
      verify_blocked(B_HOLDER, p, SYS_futex, &hold_sem, &hold_sem + 1);
      arm(B_MUTEX);
      verify_blocked(B_MUTEX, p, SYS_futex, &mx, &mx + 1);
      arm(B_SLEEP_REL);
      verify_blocked(B_SLEEP_REL, p, SYS_clock_nanosleep, NULL, NULL);
      arm(B_SLEEP_ABS);
      verify_blocked(B_SLEEP_ABS, p, SYS_clock_nanosleep, NULL, NULL);
      arm(B_ALT); /* its thread marks itself ready and goes back to wait for `go` */
      for (int t = 0; t < WAIT_LIMIT_S * 1000 && atomic_load(&b[B_ALT].ready_phase) != p; t++)
        mt_sleep_ms(1);
      pthread_kill(b[B_ALT].th, SIGUSR1);
      for (int t = 0; t < WAIT_LIMIT_S * 1000 && !atomic_load(&in_handler); t++) mt_sleep_ms(1);
      verify_blocked(B_ALT, p, SYS_futex, &alt_sem, &alt_sem + 1);
      errno = pthread_create(&joinee, NULL, joinee_main, (void*)(intptr_t)(p * 3 + 1));
      if (errno) mt_die("pthread_create (joinee)");
      arm(B_JOINER);
      verify_blocked(B_JOINER, p, SYS_futex, (char*)joinee, (char*)joinee + 4096);
      arm(B_BARRIER);
      verify_blocked(B_BARRIER, p, SYS_futex, &bar2, &bar2 + 1);
      if (tid_locks) {
        int e = pthread_rwlock_wrlock(&rw);
        MT_CHECK(e == 0, "main: wrlock = %d", e);
        arm(B_RWLOCK);
        verify_blocked(B_RWLOCK, p, SYS_futex, &rw, &rw + 1);
      }
      if (use_pipe) {
        arm(B_PIPE_W);
        verify_blocked(B_PIPE_W, p, SYS_futex, &pipe_sem, &pipe_sem + 1);
        arm(B_PIPE_R);
        verify_blocked(B_PIPE_R, p, SYS_read, (void*)(uintptr_t)pfd[0],
                       (void*)(uintptr_t)(pfd[0] + 1));
      }
      if (use_dl) {
        arm(B_DL);
        verify_blocked(B_DL, p, SYS_futex, &dl_sem, &dl_sem + 1);
      }
    }
    h = mt_fold(h, (uint64_t)tid_locks_ok);
    digest = h;
    mt_step_line(step, digest);
    if (step < mt_opt.steps) mt_sleep_ms(mt_opt.step_ms); /* a checkpoint lands here */
  }

  atomic_store(&stop, 1);
  for (int i = 0; i < NB; i++) {
    if (!b[i].enabled) continue;
    sem_post(&b[i].go);
    int e = pthread_join(b[i].th, NULL);
    MT_CHECK(e == 0, "join of blocker %s = %d", bname[i], e);
  }
  return mt_finish(digest);
}
