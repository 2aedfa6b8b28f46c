/* phases: an MPI program with long stretches outside MPI, for checkpoint requests that
 * come before MPI_Init and after MPI_Finalize (a clear answer, never a hang), and for
 * ompi_cr_checkpoint_point() (a rank that computes without MPI calls still lets a
 * checkpoint through).
 * Usage: phases BEFORE_MS WORK_ITERS AFTER_MS [COMPUTE_MS]. Prints "init", a checksum,
 * "finalized"; with COMPUTE_MS, every rank computes that long between "compute start"
 * and "compute end", calling ompi_cr_checkpoint_point() (looked up with dlsym, so the program
 * runs without ompi-cr too). */
#define _GNU_SOURCE
#include <dlfcn.h>
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
       after = argc > 3 ? atol(argv[3]) : 0, compute = argc > 4 ? atol(argv[4]) : 0;
  sleep_ms(before);
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (rank == 0) {
    printf("init: %d ranks\n", size);
    fflush(stdout);
  }
  if (compute > 0) {
    /* Every rank computes (none waits inside a collective, which would hold the
     * checkpoint until the others got there too). */
    void (*point)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "ompi_cr_checkpoint_point");
    if (rank == 0) {
      printf("compute start\n");
      fflush(stdout);
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    volatile double acc = 0;
    for (long k = 0;; k++) {
      acc += (double)k * 1e-9;
      if (k % 100000 == 0) {
        if (point) point();
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= compute) break;
      }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
      printf("compute end\n");
      fflush(stdout);
    }
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
