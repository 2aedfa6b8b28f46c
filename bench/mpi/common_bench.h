/* Shared helpers of the MPI benchmarks (bench/mpi): a monotonic clock, the median, and
 * the size list parsing. Results are printed by rank 0 as plain tables that
 * bench/mpi_bench.sh reads. */
#ifndef OCR_MPI_BENCH_COMMON_H
#define OCR_MPI_BENCH_COMMON_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <mpi.h>
#include <stdlib.h>

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

#endif
