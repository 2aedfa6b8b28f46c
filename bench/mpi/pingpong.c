/* pingpong: point-to-point latency and bandwidth between ranks 0 and 1 (other ranks
 * idle in a barrier), messages of 8 B .. 4 MiB; per size SAMPLES timing samples of many
 * round trips each, the median sample reported.
 * Usage: pingpong [--hold FILE] [SAMPLES [MAX_BYTES]]; with --hold, bench_hold(FILE)
 * (common_bench.h) runs before the measurements.
 * Output (rank 0): "size_bytes  latency_us  bandwidth_MBps" lines after a header. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, clock_gettime; before any system header */
#include <stdio.h>
#include <string.h>

#include "common_bench.h"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const char* hold = bench_take_hold(&argc, argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int samples = argc > 1 ? atoi(argv[1]) : 9;
  size_t max_bytes = argc > 2 ? (size_t)atol(argv[2]) : ((size_t)4 << 20);
  if (size < 2 || samples < 1) {
    if (rank == 0) fprintf(stderr, "pingpong: needs 2 ranks or more and SAMPLES >= 1\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  char* buf = malloc(max_bytes);
  memset(buf, 1, max_bytes);
  double* t = malloc(sizeof(double) * (size_t)samples);
  bench_hold(hold);
  if (rank == 0)
    printf("# pingpong %d ranks: size_bytes latency_us bandwidth_MBps (median of %d)\n", size,
           samples);
  for (size_t n = 8; n <= max_bytes; n *= 2) {
    int reps = bench_reps(n) / 2 + 1;
    for (int s = 0; s < samples; s++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      for (int r = 0; r < reps && rank < 2; r++) {
        if (rank == 0) {
          MPI_Send(buf, (int)n, MPI_BYTE, 1, 1, MPI_COMM_WORLD);
          MPI_Recv(buf, (int)n, MPI_BYTE, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
          MPI_Recv(buf, (int)n, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
          MPI_Send(buf, (int)n, MPI_BYTE, 0, 1, MPI_COMM_WORLD);
        }
      }
      t[s] = (MPI_Wtime() - t0) / (2.0 * reps); /* one way */
    }
    if (rank == 0) {
      double m = bench_median(t, samples);
      printf("%zu %.3f %.1f\n", n, m * 1e6, (double)n / m / 1e6);
      fflush(stdout);
    }
  }
  free(buf);
  free(t);
  MPI_Finalize();
  return 0;
}
