/* Shared helpers of the MPI benchmarks (bench/mpi): a monotonic clock, the median, and
 * the hold phase before measuring (--hold FILE). Results are printed by rank 0 as plain
 * tables that bench/mpi_bench.sh and bench/mpi_restart_bench.sh read. */
#ifndef OCR_MPI_BENCH_COMMON_H
#define OCR_MPI_BENCH_COMMON_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* CLOCK (CLOCK_MONOTONIC, CLOCK_REALTIME) in seconds. */
static inline double bench_clock(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int bench_cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

/* The median of N values (sorts them). */
static inline double bench_median(double* v, int n) {
  qsort(v, (size_t)n, sizeof(double), bench_cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Repetitions for one timing sample of a message of SIZE bytes: about 32 MiB moved,
 * between 8 and 2000 repetitions. */
static inline int bench_reps(size_t size) {
  size_t r = ((size_t)32 << 20) / (size ? size : 1);
  return r < 8 ? 8 : r > 2000 ? 2000 : (int)r;
}

/* "--hold FILE" anywhere in argv: removed from argv (argc adjusted), FILE returned;
 * NULL without it. */
static inline const char* bench_take_hold(int* argc, char** argv) {
  const char* file = NULL;
  int o = 1;
  for (int i = 1; i < *argc; i++) {
    if (strcmp(argv[i], "--hold") == 0 && i + 1 < *argc) {
      file = argv[++i];
      continue;
    }
    argv[o++] = argv[i];
  }
  *argc = o;
  argv[o] = NULL;
  return file;
}

/* The hold phase (bench/mpi_restart_bench.sh checkpoints and restarts the job in it):
 * rank 0 prints "# ready" once, then every rank makes a light MPI call (a one-int
 * MPI_Allreduce, then 10 ms asleep) until FILE exists (rank 0 looks, the Allreduce tells
 * the others). Prints "# hold done" when it ends. Collective over MPI_COMM_WORLD. */
static inline void bench_hold(const char* file) {
  if (!file) return;
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    printf("# ready\n");
    fflush(stdout);
  }
  for (;;) {
    int stop = rank == 0 && access(file, F_OK) == 0, any = 0;
    MPI_Allreduce(&stop, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any) break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (rank == 0) {
    printf("# hold done\n");
    fflush(stdout);
  }
}

#endif
