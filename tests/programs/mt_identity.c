/* mt_identity: the per-thread kernel identity that programs rely on, checked every step
 * by every thread (main and --threads workers, default 3):
 *   tid       gettid() still equals the value the thread cached when it started (code
 *             that caches its tid, e.g. for tgkill() or logging, and glibc's own
 *             tid-owned locks: recursive/error-checking mutexes), and gettid() of the
 *             main thread equals getpid();
 *   name      the name set with pthread_setname_np() (self via prctl, others via
 *             /proc/self/task/<tid>/comm);
 *   affinity  the CPU affinity set with pthread_setaffinity_np() (worker 0 on CPU 0);
 *   nice      the per-thread nice value set with setpriority(PRIO_PROCESS, tid) (worker 1);
 *   tgkill    a signal sent with tgkill(getpid(), cached tid) reaches the thread.
 * Every failed check counts in "errors" and names the property on stderr.
 */
#include "mt_common.h"

#include <sched.h>
#include <signal.h>
#include <sys/resource.h>

struct worker {
  pthread_t th;
  atomic_int tid; /* cached at start */
  char name[16];
  atomic_long step_seen;
};
static struct worker* w;
static long nw;
static pthread_barrier_t bar_a, bar_b;
static atomic_long cur_step;
static __thread pid_t tls_tid;
static __thread atomic_int usr1_hits;

static void usr1(int sig) {
  (void)sig;
  atomic_fetch_add(&usr1_hits, 1);
}

static void check_own(long step, int idx, const char* want_name) {
  pid_t now = (pid_t)syscall(SYS_gettid);
  MT_CHECK(now == tls_tid, "tid: step %ld thread %d: gettid() is no longer the tid it had at start",
           step, idx);
  char nm[32] = "";
  pthread_getname_np(pthread_self(), nm, sizeof nm);
  MT_CHECK(strcmp(nm, want_name) == 0, "name: step %ld thread %d: own name is '%s', set '%s'", step,
           idx, nm, want_name);
  if (idx == 0) {
    cpu_set_t cs;
    CPU_ZERO(&cs);
    int e = pthread_getaffinity_np(pthread_self(), sizeof cs, &cs);
    MT_CHECK(e == 0 && CPU_COUNT(&cs) == 1 && CPU_ISSET(0, &cs),
             "affinity: step %ld thread 0: CPU affinity is not {0} any more (%d CPUs)", step,
             CPU_COUNT(&cs));
  }
  if (idx == 1) {
    errno = 0;
    int prio = getpriority(PRIO_PROCESS, 0);
    MT_CHECK(prio == 5, "nice: step %ld thread 1: nice value is %d, set 5", step, prio);
  }
}

static void* worker_main(void* arg) {
  struct worker* me = arg;
  const int idx = (int)(me - w);
  tls_tid = (pid_t)syscall(SYS_gettid);
  atomic_store(&me->tid, tls_tid);
  snprintf(me->name, sizeof me->name, "mtid-%d", idx);
  pthread_setname_np(pthread_self(), me->name);
  if (idx == 0) {
    cpu_set_t cs;
    CPU_ZERO(&cs);
    CPU_SET(0, &cs);
    pthread_setaffinity_np(pthread_self(), sizeof cs, &cs);
  }
  if (idx == 1) setpriority(PRIO_PROCESS, 0, 5);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &s, NULL);
  pthread_barrier_wait(&bar_a); /* set up */
  for (;;) {
    pthread_barrier_wait(&bar_a);
    long step = atomic_load(&cur_step);
    if (step < 0) break;
    check_own(step, idx, me->name);
    atomic_store(&me->step_seen, step);
    pthread_barrier_wait(&bar_b);
    /* main sends tgkill to the cached tid now; then we look */
    pthread_barrier_wait(&bar_b);
    int hits = atomic_exchange(&usr1_hits, 0);
    MT_CHECK(hits == 1,
             "tgkill: step %ld thread %d: a signal sent to its cached tid arrived %d times", step,
             idx, hits);
    pthread_barrier_wait(&bar_b);
  }
  return NULL;
}

int main(int argc, char** argv) {
  mt_init(argc, argv, "mt_identity", 30, 100, 3, NULL, NULL);
  nw = mt_opt.threads < 2 ? 2 : mt_opt.threads;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  signal(SIGUSR1, usr1);
  tls_tid = (pid_t)syscall(SYS_gettid);
  pthread_setname_np(pthread_self(), "mtid-main");
  w = calloc((size_t)nw, sizeof *w);
  if (!w) mt_die("calloc");
  pthread_barrier_init(&bar_a, NULL, (unsigned)nw + 1);
  pthread_barrier_init(&bar_b, NULL, (unsigned)nw + 1);
  for (long i = 0; i < nw; i++) {
    errno = pthread_create(&w[i].th, NULL, worker_main, &w[i]);
    if (errno) mt_die("pthread_create");
  }
  pthread_barrier_wait(&bar_a);

  uint64_t digest = mt_mix(1);
  for (long step = 1; step <= mt_opt.steps; step++) {
    mt_wait_gate(step);
    atomic_store(&cur_step, step);
    pthread_barrier_wait(&bar_a);
    check_own(step, -1, "mtid-main");
    MT_CHECK((pid_t)syscall(SYS_gettid) == getpid(),
             "tid: step %ld: the main thread's tid is not the pid", step);
    pthread_barrier_wait(&bar_b);
    for (long i = 0; i < nw; i++) {
      char nm[32] = "";
      int e = pthread_getname_np(w[i].th, nm, sizeof nm);
      MT_CHECK(e == 0 && strcmp(nm, w[i].name) == 0,
               "name: step %ld: worker %ld is called '%s' (error %d), set '%s'", step, i, nm, e,
               w[i].name);
      int r = (int)syscall(SYS_tgkill, getpid(), atomic_load(&w[i].tid), SIGUSR1);
      MT_CHECK(r == 0, "tgkill: step %ld: tgkill(getpid(), cached tid of worker %ld) failed: %s",
               step, i, strerror(errno));
    }
    mt_sleep_ms(5);
    pthread_barrier_wait(&bar_b);
    pthread_barrier_wait(&bar_b);
    digest = mt_fold(digest, (uint64_t)step);
    mt_step_line(step, digest);
    mt_sleep_ms(mt_opt.step_ms);
  }
  atomic_store(&cur_step, -1);
  pthread_barrier_wait(&bar_a);
  for (long i = 0; i < nw; i++) pthread_join(w[i].th, NULL);
  return mt_finish(digest);
}
