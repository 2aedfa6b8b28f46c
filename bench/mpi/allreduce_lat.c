/* allreduce_lat: MPI_Allreduce (MPI_SUM over doubles) latency on all ranks, 8 B .. 1 MiB;
 * per size SAMPLES timing samples of many calls each, the median sample (of the slowest
 * rank) reported. Usage: allreduce_lat [--hold FILE] [SAMPLES [MAX_BYTES]];
 * with --hold, bench_hold(FILE) (common_bench.h) runs before the measurements.
 * Output (rank 0): "size_bytes  latency_us" lines after a header. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, clock_gettime; before any system header */
#include <stdio.h>

#include "common_bench.h"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const char* hold = bench_take_hold(&argc, argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int samples = argc > 1 ? atoi(argv[1]) : 9;
  size_t max_bytes = argc > 2 ? (size_t)atol(argv[2]) : ((size_t)1 << 20);
  if (samples < 1) MPI_Abort(MPI_COMM_WORLD, 2);
  size_t max_n = max_bytes / sizeof(double);
  double *in = malloc(sizeof(double) * max_n), *out = malloc(sizeof(double) * max_n);
  for (size_t i = 0; i < max_n; i++) in[i] = (double)(rank + i);
  double* t = malloc(sizeof(double) * (size_t)samples);
  bench_hold(hold);
  if (rank == 0)
    printf("# allreduce_lat %d ranks: size_bytes latency_us (median of %d)\n", size, samples);
  for (size_t n = 1; n <= max_n; n *= 2) {
    int reps = bench_reps(n * sizeof(double) * (size_t)size) / 4 + 1;
    for (int s = 0; s < samples; s++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      for (int r = 0; r < reps; r++)
        MPI_Allreduce(in, out, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      double mine = (MPI_Wtime() - t0) / reps, slowest;
      MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      t[s] = slowest;
    }
    if (rank == 0) {
      printf("%zu %.3f\n", n * sizeof(double), bench_median(t, samples) * 1e6);
      fflush(stdout);
    }
  }
  free(in);
  free(out);
  free(t);
  MPI_Finalize();
  return 0;
}
