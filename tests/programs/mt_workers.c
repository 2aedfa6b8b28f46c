/* mt_workers: a producer/consumer pipeline of --threads worker threads (default 4).
 *
 * Per step the main thread pushes --items work items into a bounded queue (capacity 8,
 * one mutex, two condition variables), then one end-of-step marker per worker, and waits
 * on a barrier. Workers pop items, compute a fixed function of each item and add it to
 * thread-local sums (which worker gets which item depends on scheduling; the sums do
 * not). On its marker a worker does its private step: advances its thread-local PRNG,
 * rewrites thread-local arrays (.tdata and .tbss), runs its self-checks, publishes a
 * per-thread digest and waits on the barrier. The step digest folds the item sum and the
 * per-worker digests in worker order.
 *
 * Self-checks (every step; a failure counts in "errors" and is explained on stderr):
 *   worker: pthread_self() equals the handle pthread_create returned and the thread
 *   pointer; gettid() == syscall(SYS_gettid); pthread_kill(self, 0) == 0; its TLS block
 *   is where it was; the robust list head and the signal mask (SIGUSR1 blocked) are
 *   unchanged; rseq is still registered on glibc's area (rseq() answers EBUSY);
 *   pthread_getattr_np(self) gives a stack that contains a local variable;
 *   pthread_getcpuclockid(self) and clock_gettime() on it work.
 *   main: pthread_kill(worker, 0) == 0 and pthread_getcpuclockid(worker) work for every
 *   live worker, pthread_getattr_np(worker) reports the stack size it was created with;
 *   each step starts a short thread that ends at once and joins the previous step's one
 *   (so a checkpoint usually holds an ended, not yet joined thread): the join returns
 *   its result; after that join the process has as many threads (/proc/self/task) as at
 *   the first step (a restore neither loses nor adds threads; the runtime's own agent
 *   thread, present before and after, must not come back twice).
 */
#include "mt_common.h"

#include <dirent.h>
#include <signal.h>
#include <sys/rseq.h>

#define QCAP 8
#define ITEM_MARKER (-1)
#define ITEM_STOP (-2)
#define WORKER_STACK (512u << 10)

struct worker {
  pthread_t th;
  int index;
  uint64_t digest; /* published on the marker */
  uint64_t sum, count;
};

static struct worker* workers;
static long nworkers, nitems, item_reps;
static pthread_barrier_t bar;

static struct {
  pthread_mutex_t m;
  pthread_cond_t not_empty, not_full;
  long buf[QCAP];
  unsigned head, len;
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0};

static void q_push(long v) {
  pthread_mutex_lock(&q.m);
  while (q.len == QCAP) pthread_cond_wait(&q.not_full, &q.m);
  q.buf[(q.head + q.len) % QCAP] = v;
  q.len++;
  pthread_cond_signal(&q.not_empty);
  pthread_mutex_unlock(&q.m);
}

static long q_pop(void) {
  pthread_mutex_lock(&q.m);
  while (q.len == 0) pthread_cond_wait(&q.not_empty, &q.m);
  long v = q.buf[q.head];
  q.head = (q.head + 1) % QCAP;
  q.len--;
  pthread_cond_signal(&q.not_full);
  pthread_mutex_unlock(&q.m);
  return v;
}

/* thread-local state: .tbss and .tdata */
static __thread uint64_t tls_prng;
static __thread uint64_t tls_sum, tls_count, tls_digest;
static __thread int tls_index = -1;
static __thread void* tls_self_addr;
static __thread void* tls_robust_head;
static __thread unsigned char tls_big[8192];
static _Thread_local uint64_t tls_init[8] = {11, 22, 33, 44, 55, 66, 77, 88};

static void* thread_pointer(void) {
  void* tp;
  __asm__("mov %%fs:0, %0" : "=r"(tp));
  return tp;
}

static void* robust_head(void) {
  void* head = NULL;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, 0, &head, &len) != 0) return NULL;
  return head;
}

/* Checks that every thread (main and workers) runs each step. */
static void check_self(const char* who, int index, pthread_t expected) {
  pthread_t self = pthread_self();
  MT_CHECK(pthread_equal(self, expected),
           "%s %d: pthread_self() is not the handle pthread_create returned", who, index);
  MT_CHECK((void*)self == thread_pointer(), "%s %d: pthread_self() is not the thread pointer", who,
           index);
  MT_CHECK(gettid() == mt_gettid(), "%s %d: gettid() differs from syscall(SYS_gettid)", who, index);
  int e = pthread_kill(self, 0);
  MT_CHECK(e == 0, "%s %d: pthread_kill(self, 0) = %d", who, index, e);
  MT_CHECK(tls_self_addr == (void*)&tls_prng, "%s %d: the TLS block moved", who, index);
  MT_CHECK(tls_index == index, "%s %d: TLS index is %d", who, index, tls_index);
  MT_CHECK(robust_head() == tls_robust_head, "%s %d: robust list head changed", who, index);
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  MT_CHECK(sigismember(&cur, SIGUSR1) == (index >= 0), "%s %d: signal mask changed", who, index);
  if (__rseq_size > 0) {
    long r = syscall(SYS_rseq, (char*)thread_pointer() + __rseq_offset, 32, 0, 0x53053053);
    MT_CHECK(r == -1 && errno == EBUSY,
             "%s %d: rseq is not registered on glibc's area (rseq() = %ld, errno %d)", who, index,
             r, r ? errno : 0);
  }
  pthread_attr_t a;
  e = pthread_getattr_np(self, &a);
  MT_CHECK(e == 0, "%s %d: pthread_getattr_np(self) = %d", who, index, e);
  if (e == 0) {
    void* addr;
    size_t size;
    pthread_attr_getstack(&a, &addr, &size);
    char here;
    MT_CHECK((char*)&here >= (char*)addr && (char*)&here < (char*)addr + size,
             "%s %d: a local variable is outside the stack pthread_getattr_np reports", who, index);
    pthread_attr_destroy(&a);
  }
  clockid_t cid;
  e = pthread_getcpuclockid(self, &cid);
  struct timespec ts;
  MT_CHECK(e == 0 && clock_gettime(cid, &ts) == 0, "%s %d: CPU clock of self unusable (%d)", who,
           index, e);
}

static void* worker_main(void* arg) {
  struct worker* me = arg;
  tls_index = me->index;
  tls_prng = mt_mix((uint64_t)me->index + 1) | 1;
  tls_self_addr = &tls_prng;
  tls_robust_head = robust_head();
  for (size_t i = 0; i < sizeof tls_big; i++)
    tls_big[i] = (unsigned char)(i * 7 + (size_t)me->index);
  for (int i = 0; i < 8; i++) tls_init[i] += (uint64_t)me->index;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  for (;;) {
    long item = q_pop();
    if (item == ITEM_STOP) break;
    if (item == ITEM_MARKER) {
      for (int j = 0; j < 64; j++) {
        uint64_t r = mt_rand(&tls_prng);
        tls_big[r % sizeof tls_big] ^= (unsigned char)(r >> 56);
        tls_init[j % 8] = mt_fold(tls_init[j % 8], r);
        tls_digest = mt_fold(tls_digest, r);
      }
      uint64_t h = tls_digest;
      for (size_t i = 0; i < sizeof tls_big; i += 8) {
        uint64_t w;
        memcpy(&w, tls_big + i, 8);
        h = mt_fold(h, w);
      }
      for (int i = 0; i < 8; i++) h = mt_fold(h, tls_init[i]);
      check_self("worker", me->index, me->th);
      me->digest = h;
      me->sum = tls_sum;
      me->count = tls_count;
      tls_sum = tls_count = 0;
      pthread_barrier_wait(&bar);
      continue;
    }
    tls_sum += mt_work((uint64_t)item, item_reps);
    tls_count++;
  }
  return (void*)(uintptr_t)(tls_digest | 1);
}

static long count_tasks(void) {
  DIR* d = opendir("/proc/self/task");
  if (!d) return -1;
  long n = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') n++;
  closedir(d);
  return n;
}

/* the short-lived thread of each step */
static uint64_t eph_results[2];
static void* eph_main(void* arg) {
  long step = (long)(intptr_t)arg;
  eph_results[step & 1] = mt_work((uint64_t)step * 977, 1000);
  return &eph_results[step & 1];
}

int main(int argc, char** argv) {
  static const char* const names[4] = {"items", NULL, NULL, NULL};
  static const long defs[4] = {64, 0, 0, 0};
  mt_init(argc, argv, "mt_workers", 40, 40, 4, names, defs);
  nworkers = mt_opt.threads;
  nitems = mt_opt.extra[0] ? mt_opt.extra[0] : 64;
  item_reps = mt_opt.step_ms * MT_REPS_PER_MS * 2 / nitems;

  pthread_t main_handle = pthread_self();
  tls_index = -1;
  tls_self_addr = &tls_prng;
  tls_robust_head = robust_head();

  workers = calloc((size_t)nworkers, sizeof *workers);
  if (!workers) mt_die("calloc");
  if (pthread_barrier_init(&bar, NULL, (unsigned)nworkers + 1)) mt_die("pthread_barrier_init");
  pthread_attr_t wattr;
  pthread_attr_init(&wattr);
  pthread_attr_setstacksize(&wattr, WORKER_STACK);
  for (long i = 0; i < nworkers; i++) {
    workers[i].index = (int)i;
    char name[16];
    errno = pthread_create(&workers[i].th, &wattr, worker_main, &workers[i]);
    if (errno) mt_die("pthread_create");
    snprintf(name, sizeof name, "mtw-%d", (int)i);
    pthread_setname_np(workers[i].th, name);
  }
  pthread_attr_destroy(&wattr);

  uint64_t digest = mt_mix(12345);
  pthread_t eph_prev;
  int have_eph = 0;
  for (long step = 1; step <= mt_opt.steps; step++) {
    mt_wait_gate(step);
    for (long i = 0; i < nitems; i++) q_push(step * 1000003 + i);
    for (long i = 0; i < nworkers; i++) q_push(ITEM_MARKER);
    pthread_barrier_wait(&bar);

    uint64_t sum = 0, count = 0, h = mt_fold(digest, (uint64_t)step);
    for (long i = 0; i < nworkers; i++) {
      sum += workers[i].sum;
      count += workers[i].count;
      h = mt_fold(h, workers[i].digest);
    }
    MT_CHECK(count == (uint64_t)nitems, "step %ld: workers handled %" PRIu64 " items, not %ld",
             step, count, nitems);
    h = mt_fold(h, sum);

    /* the previous step's short thread ended long ago: join it */
    if (have_eph) {
      void* ret = NULL;
      int e = pthread_join(eph_prev, &ret);
      MT_CHECK(e == 0, "step %ld: pthread_join of an ended thread = %d", step, e);
      MT_CHECK(ret == &eph_results[(step - 1) & 1],
               "step %ld: joined thread returned a wrong value", step);
      h = mt_fold(h, eph_results[(step - 1) & 1]);
    }
    /* a joined thread may still be listed for a moment (the kernel clears its tid, which
       ends the join, before it removes the task): look again for up to 2 s */
    static long tasks_at_start = -1;
    long tasks = count_tasks();
    if (tasks_at_start < 0) tasks_at_start = tasks;
    for (int t = 0; t < 2000 && tasks != tasks_at_start; t++) {
      mt_sleep_ms(1);
      tasks = count_tasks();
    }
    MT_CHECK(tasks == tasks_at_start && tasks >= nworkers + 1,
             "step %ld: the process has %ld threads, at the first step %ld", step, tasks,
             tasks_at_start);
    errno = pthread_create(&eph_prev, NULL, eph_main, (void*)(intptr_t)step);
    if (errno) mt_die("pthread_create");
    have_eph = 1;

    for (long i = 0; i < nworkers; i++) {
      int e = pthread_kill(workers[i].th, 0);
      MT_CHECK(e == 0, "step %ld: pthread_kill(worker %ld, 0) = %d", step, i, e);
      clockid_t cid;
      struct timespec ts;
      e = pthread_getcpuclockid(workers[i].th, &cid);
      MT_CHECK(e == 0 && clock_gettime(cid, &ts) == 0,
               "step %ld: CPU clock of worker %ld unusable (%d, %s)", step, i, e, strerror(errno));
      pthread_attr_t a;
      e = pthread_getattr_np(workers[i].th, &a);
      MT_CHECK(e == 0, "step %ld: pthread_getattr_np(worker %ld) = %d", step, i, e);
      if (e == 0) {
        size_t ss = 0;
        pthread_attr_getstacksize(&a, &ss);
        MT_CHECK(ss == WORKER_STACK, "step %ld: worker %ld stack size %zu", step, i, ss);
        pthread_attr_destroy(&a);
      }
    }
    check_self("main", -1, main_handle);
    digest = h;
    mt_step_line(step, digest);
  }

  for (long i = 0; i < nworkers; i++) q_push(ITEM_STOP);
  for (long i = 0; i < nworkers; i++) {
    void* ret = NULL;
    int e = pthread_join(workers[i].th, &ret);
    MT_CHECK(e == 0, "pthread_join(worker %ld) = %d", i, e);
    digest = mt_fold(digest, (uint64_t)(uintptr_t)ret);
  }
  if (have_eph) {
    void* ret = NULL;
    MT_CHECK(pthread_join(eph_prev, &ret) == 0, "last join");
    digest = mt_fold(digest, eph_results[mt_opt.steps & 1]);
  }
  return mt_finish(digest);
}
