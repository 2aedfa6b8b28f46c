/* mt_churn: threads are created and end all the time, so that a checkpoint lands while
 * threads are being created, are starting, are exiting, or have ended and wait to be
 * joined.
 *
 * Each step runs --rounds rounds (default 12); a round starts
 *   - 3 joinable threads: default attributes, a 128 KiB stack, and a stack the program
 *     supplies itself (pthread_attr_setstack); the third starts and joins a grandchild;
 *   - 3 detached threads (one created detached, one detached by the creator after
 *     pthread_create, one detaching itself) that report through a countdown (mutex +
 *     condition variable) and then end;
 *   - one thread that ends with pthread_exit() from a nested call, running a cleanup
 *     handler;
 * and joins/awaits them all. At the end of a step two more threads are started that are
 * only joined in the next step (so ended, unjoined threads exist between steps).
 * Every thread starts with a large initialised thread-local block (.tdata, 64 KiB, so
 * each pthread_create copies it) and checks that it sees the initial image, computes a
 * fixed function of (step, round, slot), and stores it; the step digest folds all
 * results in slot order, so it does not depend on scheduling.
 */
#include "mt_common.h"

#include <semaphore.h>

#define TLS_BLOB (64u << 10)
#define NJOIN 3
#define NDET 3
#define NSLOT (NJOIN + NDET + 2) /* + pthread_exit thread + grandchild */
#define USTACK (512u << 10)

static __thread unsigned char tls_blob[TLS_BLOB] = {1, 2, 3, 4, 5, 6, 7, 8};
static __thread uint64_t tls_seed = 0x5eed;

static long nrounds, reps;
static uint64_t results[NSLOT];
static uint64_t carry_results[2];

static struct {
  pthread_mutex_t m;
  pthread_cond_t c;
  int left;
} latch = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static uint64_t slot_value(long step, long round, int slot) {
  /* the thread's view of its fresh TLS is part of the value */
  uint64_t h = mt_fold((uint64_t)step * 1000 + (uint64_t)round, (uint64_t)slot);
  int fresh =
      tls_seed == 0x5eed && tls_blob[0] == 1 && tls_blob[7] == 8 && tls_blob[TLS_BLOB - 1] == 0;
  MT_CHECK(fresh, "step %ld round %ld slot %d: a new thread's TLS is not the initial image", step,
           round, slot);
  tls_blob[TLS_BLOB - 1] = 0xee; /* dirty it: the next thread must not see this */
  tls_seed = h;
  return mt_work(h, reps) ^ (uint64_t)fresh;
}

struct job {
  long step, round;
  int slot;
};
static struct job jobs[NSLOT];

static void* grandchild_main(void* arg) {
  struct job* j = arg;
  results[j->slot] = slot_value(j->step, j->round, j->slot);
  return NULL;
}

static void* joinable_main(void* arg) {
  struct job* j = arg;
  results[j->slot] = slot_value(j->step, j->round, j->slot);
  if (j->slot == NJOIN - 1) { /* starts and joins a grandchild */
    struct job* g = &jobs[NSLOT - 1];
    *g = (struct job){j->step, j->round, NSLOT - 1};
    pthread_t t;
    errno = pthread_create(&t, NULL, grandchild_main, g);
    if (errno) mt_die("pthread_create (grandchild)");
    int e = pthread_join(t, NULL);
    MT_CHECK(e == 0, "join of the grandchild = %d", e);
  }
  return (void*)(uintptr_t)(results[j->slot] | 1);
}

static void latch_done(void) {
  pthread_mutex_lock(&latch.m);
  if (--latch.left == 0) pthread_cond_signal(&latch.c);
  pthread_mutex_unlock(&latch.m);
}

static void* detached_main(void* arg) {
  struct job* j = arg;
  if (j->slot == NJOIN + 2) {
    int e = pthread_detach(pthread_self());
    MT_CHECK(e == 0, "pthread_detach(self) = %d", e);
  }
  results[j->slot] = slot_value(j->step, j->round, j->slot);
  latch_done();
  return NULL;
}

static uint64_t cleanup_added;
static void cleanup(void* arg) {
  cleanup_added = mt_fold(cleanup_added, (uint64_t)(uintptr_t)arg);
}

__attribute__((noinline, noreturn)) static void exit_deep(struct job* j, int depth) {
  if (depth > 0)
    exit_deep(j, depth - 1);
  else
    pthread_exit((void*)(uintptr_t)(results[j->slot] | 1));
}

static void* exiting_main(void* arg) {
  struct job* j = arg;
  pthread_cleanup_push(cleanup, (void*)(uintptr_t)(j->step * 100 + j->round));
  results[j->slot] = slot_value(j->step, j->round, j->slot);
  exit_deep(j, 5);
  pthread_cleanup_pop(0);
  return NULL;
}

static void* carry_main(void* arg) {
  long v = (long)(intptr_t)arg; /* step * 2 + which */
  carry_results[v & 1] = mt_work((uint64_t)v * 31337, reps);
  return &carry_results[v & 1];
}

static unsigned char* user_stack;

int main(int argc, char** argv) {
  static const char* const names[4] = {"rounds", NULL, NULL, NULL};
  static const long defs[4] = {12, 0, 0, 0};
  mt_init(argc, argv, "mt_churn", 40, 20, 1, names, defs);
  nrounds = mt_opt.extra[0] > 0 ? mt_opt.extra[0] : 1;
  reps = mt_opt.step_ms * MT_REPS_PER_MS / (nrounds * NSLOT) + 1;
  user_stack = aligned_alloc(4096, USTACK);
  if (!user_stack) mt_die("aligned_alloc");

  pthread_attr_t small, ustack, detached;
  pthread_attr_init(&small);
  pthread_attr_setstacksize(&small, 128u << 10);
  pthread_attr_init(&ustack);
  pthread_attr_setstack(&ustack, user_stack, USTACK);
  pthread_attr_init(&detached);
  pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);

  uint64_t digest = mt_mix(777);
  pthread_t carry[2];
  int have_carry = 0;
  for (long step = 1; step <= mt_opt.steps; step++) {
    mt_wait_gate(step);
    uint64_t h = mt_fold(digest, (uint64_t)step);
    if (have_carry) {
      for (int i = 0; i < 2; i++) {
        void* ret = NULL;
        int e = pthread_join(carry[i], &ret);
        MT_CHECK(e == 0 && ret == &carry_results[i], "step %ld: join of carried thread %d = %d",
                 step, i, e);
        h = mt_fold(h, carry_results[i]);
      }
    }
    for (long round = 0; round < nrounds; round++) {
      pthread_t jt[NJOIN], xt, dt[NDET];
      memset(results, 0, sizeof results);
      for (int s = 0; s < NSLOT; s++) jobs[s] = (struct job){step, round, s};
      pthread_mutex_lock(&latch.m);
      latch.left = NDET;
      pthread_mutex_unlock(&latch.m);
      for (int s = 0; s < NJOIN; s++) {
        errno = pthread_create(&jt[s],
                               s == 0   ? NULL
                               : s == 1 ? &small
                                        : &ustack,
                               joinable_main, &jobs[s]);
        if (errno) mt_die("pthread_create (joinable)");
      }
      for (int d = 0; d < NDET; d++) {
        int s = NJOIN + d;
        errno = pthread_create(&dt[d], d == 0 ? &detached : NULL, detached_main, &jobs[s]);
        if (errno) mt_die("pthread_create (detached)");
        if (d == 1) {
          int e = pthread_detach(dt[d]);
          MT_CHECK(e == 0, "pthread_detach(new thread) = %d", e);
        }
      }
      errno = pthread_create(&xt, NULL, exiting_main, &jobs[NJOIN + NDET]);
      if (errno) mt_die("pthread_create (exiting)");
      for (int s = 0; s < NJOIN; s++) {
        void* ret = NULL;
        int e = pthread_join(jt[s], &ret);
        MT_CHECK(e == 0 && ret == (void*)(uintptr_t)(results[s] | 1),
                 "step %ld: join of slot %d = %d", step, s, e);
      }
      void* ret = NULL;
      int e = pthread_join(xt, &ret);
      MT_CHECK(e == 0 && ret == (void*)(uintptr_t)(results[NJOIN + NDET] | 1),
               "step %ld: join of the pthread_exit thread = %d", step, e);
      pthread_mutex_lock(&latch.m);
      while (latch.left > 0) pthread_cond_wait(&latch.c, &latch.m);
      pthread_mutex_unlock(&latch.m);
      for (int s = 0; s < NSLOT; s++) h = mt_fold(h, results[s]);
    }
    h = mt_fold(h, cleanup_added);
    for (int i = 0; i < 2; i++) {
      errno = pthread_create(&carry[i], NULL, carry_main, (void*)(intptr_t)(step * 2 + i));
      if (errno) mt_die("pthread_create (carry)");
    }
    have_carry = 1;
    digest = h;
    mt_step_line(step, digest);
  }
  for (int i = 0; i < 2 && have_carry; i++) {
    void* ret = NULL;
    MT_CHECK(pthread_join(carry[i], &ret) == 0, "last join");
    digest = mt_fold(digest, carry_results[i]);
  }
  return mt_finish(digest);
}
