/* mt_omp: OpenMP (libgomp) in every step; the thread pool persists between regions, so
 * a checkpoint finds the pool threads either inside a region or idle in libgomp's wait.
 *
 * Run with OMP_NUM_THREADS (the tests use 3). Each step:
 *   - a parallel region: a static-schedule loop with an integer + reduction, a
 *     threadprivate counter and accumulator that live across regions (libgomp keeps
 *     thread i of the team the same OS thread), barrier, single, critical, atomic;
 *   - a parallel for with schedule(dynamic, 3) and an XOR reduction (order-free);
 *   - tasks created by one thread and run by the team, results in fixed slots;
 *   - serial work on the main thread between regions (the pool waits meanwhile).
 * Self-checks: the team has omp_get_max_threads() threads in every region, each thread
 * number appears exactly once, and a thread's threadprivate data is the one it left.
 */
#include "mt_common.h"

#include <omp.h>

#define MAXT 64
#define NTASKS 24

static long tp_regions; /* regions this thread took part in */
static uint64_t tp_acc; /* running hash of this thread's work */
static void* tp_self;   /* address of its own threadprivate block */
#pragma omp threadprivate(tp_regions, tp_acc, tp_self)

int main(int argc, char** argv) {
  static const char* const names[4] = {"iters", NULL, NULL, NULL};
  static const long defs[4] = {600, 0, 0, 0};
  mt_init(argc, argv, "mt_omp", 40, 40, 1, names, defs);
  const long iters = mt_opt.extra[0] > 0 ? mt_opt.extra[0] : 600;
  const long reps = mt_opt.step_ms * MT_REPS_PER_MS / (2 * iters) + 1;
  const int nt = omp_get_max_threads();
  if (nt > MAXT) {
    fprintf(stderr, "mt_omp: at most %d threads\n", MAXT);
    return 2;
  }

  uint64_t digest = mt_fold(mt_mix(4242), (uint64_t)nt);
  for (long step = 1; step <= mt_opt.steps; step++) {
    mt_wait_gate(step);
    uint64_t h = mt_fold(digest, (uint64_t)step);

    int64_t sum = 0;
    uint64_t per_thread[MAXT] = {0};
    int seen[MAXT] = {0};
    uint64_t single_val = 0;
    long crit = 0, atom = 0;
#pragma omp parallel reduction(+ : sum)
    {
      const int me = omp_get_thread_num();
      MT_CHECK(omp_get_num_threads() == nt, "step %ld: team of %d threads, expected %d", step,
               omp_get_num_threads(), nt);
      if (tp_regions == 0) tp_self = &tp_regions;
      MT_CHECK(tp_self == &tp_regions, "step %ld thread %d: threadprivate block moved", step, me);
      MT_CHECK(tp_regions == step - 1, "step %ld thread %d: threadprivate counter %ld", step, me,
               tp_regions);
#pragma omp for schedule(static)
      for (long i = 0; i < iters; i++) {
        uint64_t v = mt_work((uint64_t)(step * iters + i), reps);
        sum += (int64_t)(v & 0xffffffffu);
        tp_acc = mt_fold(tp_acc, v);
      }
      tp_regions++;
      if (me < MAXT) {
        per_thread[me] = mt_fold(tp_acc, (uint64_t)tp_regions);
#pragma omp atomic
        seen[me]++;
      }
#pragma omp barrier
#pragma omp single
      {
        single_val = 0;
        for (int t = 0; t < nt; t++) single_val = mt_fold(single_val, per_thread[t]);
      }
#pragma omp critical(mt_crit)
      crit = crit * 3 + 1; /* same result in any order: only the count matters */
#pragma omp atomic
      atom += me + 1;
    }
    for (int t = 0; t < nt; t++)
      MT_CHECK(seen[t] == 1, "step %ld: thread number %d seen %d times", step, t, seen[t]);
    h = mt_fold(h, (uint64_t)sum);
    for (int t = 0; t < nt; t++) h = mt_fold(h, per_thread[t]);
    h = mt_fold(mt_fold(mt_fold(h, single_val), (uint64_t)crit), (uint64_t)atom);

    /* serial work: the pool waits */
    h = mt_fold(h, mt_work(h, reps * 50));

    uint64_t x = 0;
#pragma omp parallel for schedule(dynamic, 3) reduction(^ : x)
    for (long i = 0; i < iters; i++) x ^= mt_work((uint64_t)(step * 7919 + i), reps);
    h = mt_fold(h, x);

    uint64_t task_res[NTASKS] = {0};
#pragma omp parallel
#pragma omp single
    for (int k = 0; k < NTASKS; k++) {
#pragma omp task firstprivate(k) shared(task_res)
      task_res[k] = mt_work((uint64_t)(step * 100 + k), reps * 4);
    }
    for (int k = 0; k < NTASKS; k++) h = mt_fold(h, task_res[k]);

    digest = h;
    mt_step_line(step, digest);
  }
  return mt_finish(digest);
}
