/* master_worker: rank 0 hands out tasks; the workers compute and answer; the master
 * takes answers in whatever order they come (MPI_Probe with MPI_ANY_SOURCE, then
 * MPI_Recv from the probed source) and hands that worker the next task. Results are
 * stored by task number and summed in task order, so the output does not depend on
 * which worker ran what. Usage: master_worker [TASKS [WORK]] (2 ranks or more). */
#include "common.h"

enum { TAG_TASK = 1, TAG_RESULT = 2, TAG_STOP = 3 };

static uint64_t task_result(long task, long work) {
  uint64_t x = crcp_work(work + task % 5, (uint64_t)task * 2654435761u + 1);
  return crcp_hash_u64((uint64_t)task, x);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  crcp_args a = crcp_parse(argc, argv, 1600, 100);
  if (size < 2) {
    fprintf(stderr, "master_worker: needs 2 ranks or more\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const long tasks = a.iters, every = crcp_every(tasks);
  if (rank == 0) {
    uint64_t* result = calloc((size_t)tasks, sizeof(uint64_t));
    char* have = calloc((size_t)tasks, 1);
    long next = 0, done = 0, prefix = 0, printed = 0;
    int active = 0;
    crcp_print(rank, 0, "master_worker: %d workers, %ld tasks\n", size - 1, tasks);
    for (int w = 1; w < size; w++) {
      if (next < tasks) {
        MPI_Send(&next, 1, MPI_LONG, w, TAG_TASK, MPI_COMM_WORLD);
        next++;
        active++;
      } else {
        MPI_Send(&next, 1, MPI_LONG, w, TAG_STOP, MPI_COMM_WORLD);
      }
    }
    while (active > 0) {
      MPI_Status st;
      MPI_Probe(MPI_ANY_SOURCE, TAG_RESULT, MPI_COMM_WORLD, &st);
      uint64_t msg[2];
      MPI_Recv(msg, 2, MPI_UINT64_T, st.MPI_SOURCE, TAG_RESULT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      result[msg[0]] = msg[1];
      have[msg[0]] = 1;
      done++;
      if (next < tasks) {
        MPI_Send(&next, 1, MPI_LONG, st.MPI_SOURCE, TAG_TASK, MPI_COMM_WORLD);
        next++;
      } else {
        MPI_Send(&next, 1, MPI_LONG, st.MPI_SOURCE, TAG_STOP, MPI_COMM_WORLD);
        active--;
      }
      while (prefix < tasks && have[prefix]) prefix++;
      /* print each finished block of tasks once all of its tasks are in */
      while (printed + every <= prefix || (prefix == tasks && printed < tasks)) {
        long end = printed + every < tasks ? printed + every : tasks;
        uint64_t sum = 0, h = CRCP_HASH0;
        for (long t = printed; t < end; t++) {
          sum += result[t];
          h = crcp_hash_u64(result[t], h);
        }
        printf("master_worker: tasks %ld..%ld sum %016llx hash %016llx\n", printed, end - 1,
               (unsigned long long)sum, (unsigned long long)h);
        fflush(stdout);
        printed = end;
      }
    }
    uint64_t total = 0;
    for (long t = 0; t < tasks; t++) total += result[t];
    printf("master_worker: %ld results, total %016llx\n", done, (unsigned long long)total);
    fflush(stdout);
    free(result);
    free(have);
  } else {
    for (;;) {
      long task;
      MPI_Status st;
      MPI_Recv(&task, 1, MPI_LONG, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
      if (st.MPI_TAG == TAG_STOP) break;
      uint64_t msg[2] = {(uint64_t)task, task_result(task, a.work)};
      MPI_Send(msg, 2, MPI_UINT64_T, 0, TAG_RESULT, MPI_COMM_WORLD);
    }
  }
  crcp_finish(MPI_COMM_WORLD, 0, "master_worker");
  MPI_Finalize();
  return 0;
}
