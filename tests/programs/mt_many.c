/* mt_many: --threads threads (default 64) at once.
 *
 * Each step every thread does an amount of work that differs per thread and step, so a
 * checkpoint finds some threads computing, some waiting on the step's barrier and some
 * waiting on a condition variable for the next step. Thread i keeps thread-local state
 * (a PRNG and an accumulator) and publishes result[i]; main folds the results in index
 * order. Self-checks: pthread_self() and the TLS block of every thread stay the same, and
 * the process has as many threads (/proc/self/task) at every step as at the first one
 * (a restore must neither lose a thread nor add one: the runtime's own threads, present
 * before and after, are not application threads and must not be duplicated).
 */
#include "mt_common.h"

#include <dirent.h>

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

struct slot {
  pthread_t th;
  uint64_t result;
};
static struct slot* slots;
static long nthreads, reps;
static pthread_barrier_t done_bar;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static long go_step; /* under m; -1: stop */

static __thread uint64_t tls_prng, tls_acc;
static __thread void* tls_where;

static void* thread_main(void* arg) {
  struct slot* me = arg;
  const long idx = me - slots;
  tls_prng = mt_mix((uint64_t)idx + 99) | 1;
  tls_where = &tls_prng;
  long seen = 0;
  for (;;) {
    pthread_mutex_lock(&m);
    while (go_step == seen) pthread_cond_wait(&c, &m);
    long step = go_step;
    pthread_mutex_unlock(&m);
    if (step < 0) break;
    seen = step;
    MT_CHECK(pthread_equal(pthread_self(), me->th), "thread %ld: pthread_self() changed", idx);
    MT_CHECK(tls_where == (void*)&tls_prng, "thread %ld: TLS block moved", idx);
    long my_reps = reps / 2 + (long)(mt_rand(&tls_prng) % (uint64_t)(reps + 1));
    tls_acc = mt_fold(tls_acc, mt_work((uint64_t)(step * 4096 + idx), my_reps));
    me->result = tls_acc;
    pthread_barrier_wait(&done_bar);
  }
  return NULL;
}

int main(int argc, char** argv) {
  mt_init(argc, argv, "mt_many", 30, 40, 64, NULL, NULL);
  nthreads = mt_opt.threads;
  reps = mt_opt.step_ms * MT_REPS_PER_MS * 2 / nthreads + 1;
  slots = calloc((size_t)nthreads, sizeof *slots);
  if (!slots) mt_die("calloc");
  if (pthread_barrier_init(&done_bar, NULL, (unsigned)nthreads + 1)) mt_die("pthread_barrier_init");
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 256u << 10);
  /* the handles are written before any thread reads them (first step) */
  for (long i = 0; i < nthreads; i++) {
    errno = pthread_create(&slots[i].th, &a, thread_main, &slots[i]);
    if (errno) mt_die("pthread_create");
  }
  pthread_attr_destroy(&a);

  uint64_t digest = mt_mix(64);
  long tasks_at_start = -1;
  for (long step = 1; step <= mt_opt.steps; step++) {
    mt_wait_gate(step);
    pthread_mutex_lock(&m);
    go_step = step;
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
    pthread_barrier_wait(&done_bar);
    uint64_t h = mt_fold(digest, (uint64_t)step);
    for (long i = 0; i < nthreads; i++) h = mt_fold(h, slots[i].result);
    long tasks = count_tasks();
    if (tasks_at_start < 0) tasks_at_start = tasks;
    MT_CHECK(tasks == tasks_at_start && tasks >= nthreads + 1,
             "step %ld: the process has %ld threads, at the first step %ld", step, tasks,
             tasks_at_start);
    digest = h;
    mt_step_line(step, digest);
  }
  pthread_mutex_lock(&m);
  go_step = -1;
  pthread_cond_broadcast(&c);
  pthread_mutex_unlock(&m);
  for (long i = 0; i < nthreads; i++) {
    int e = pthread_join(slots[i].th, NULL);
    MT_CHECK(e == 0, "join %ld = %d", i, e);
  }
  return mt_finish(digest);
}
