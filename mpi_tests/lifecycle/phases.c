/* phases: an MPI program with long pauses outside MPI, for checkpoint requests that come
 * before MPI_Init and after MPI_Finalize (issue 4: a clear answer, never a hang).
 * Usage: phases BEFORE_MS WORK_ITERS AFTER_MS. Prints "init", a checksum, "finalized". */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

int main(int argc, char** argv) {
  long before = argc > 1 ? atol(argv[1]) : 0, iters = argc > 2 ? atol(argv[2]) : 100,
       after = argc > 3 ? atol(argv[3]) : 0;
  sleep_ms(before);
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (rank == 0) {
    printf("init: %d ranks\n", size);
    fflush(stdout);
  }
  uint64_t x = (uint64_t)rank + 1, sum = 0;
  for (long i = 0; i < iters; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t s = 0;
    MPI_Allreduce(&x, &s, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    sum ^= s;
  }
  if (rank == 0) {
    printf("checksum %016llx\n", (unsigned long long)sum);
    fflush(stdout);
  }
  MPI_Finalize();
  if (rank == 0) {
    printf("finalized\n");
    fflush(stdout);
  }
  sleep_ms(after);
  return 0;
}
