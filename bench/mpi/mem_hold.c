/* mem_hold: the subject of the checkpoint-latency scenario of bench/mpi_bench.sh. Every
 * rank allocates MIB MiB and writes every page (non-zero, rank-specific data, so no page
 * is skipped as zero), prints "mem_hold: ready" (rank 0, once all ranks are done), then
 * makes light MPI calls (a small Allreduce every 10 ms) until the file STOP exists, and
 * finally checks its memory. Usage: mem_hold MIB STOP_FILE.
 * Every rank that finds more than 0.5 s (CLOCK_REALTIME: a restored process may see
 * CLOCK_MONOTONIC continue where it stopped) between two of its loop iterations prints "mem_hold: rank R resumed at T (gap G s)" with T = CLOCK_REALTIME in
 * seconds: the first line a rank prints after a checkpoint or a restart (the restart
 * scenario of bench/mpi_restart_bench.sh reads T). */
#define _POSIX_C_SOURCE 200809L /* nanosleep; before any system header */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "common_bench.h"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (argc != 3 || atol(argv[1]) <= 0) {
    if (rank == 0) fprintf(stderr, "usage: mem_hold MIB STOP_FILE\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  size_t words = ((size_t)atol(argv[1]) << 20) / sizeof(uint64_t);
  uint64_t* mem = malloc(words * sizeof(uint64_t));
  if (!mem) {
    fprintf(stderr, "mem_hold: rank %d: out of memory\n", rank);
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
  for (size_t i = 0; i < words; i++)
    mem[i] = (uint64_t)i * 0x9e3779b97f4a7c15ULL + (uint64_t)rank + 1;
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    printf("mem_hold: ready\n");
    fflush(stdout);
  }
  double last = bench_clock(CLOCK_REALTIME);
  for (;;) {
    double t = bench_clock(CLOCK_REALTIME);
    if (t - last > 0.5) {
      printf("mem_hold: rank %d resumed at %.6f (gap %.3f s)\n", rank, t, t - last);
      fflush(stdout);
    }
    last = t;
    int stop = rank == 0 && access(argv[2], F_OK) == 0, any = 0;
    MPI_Allreduce(&stop, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any) break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  size_t bad = 0;
  for (size_t i = 0; i < words; i++)
    bad += mem[i] != (uint64_t)i * 0x9e3779b97f4a7c15ULL + (uint64_t)rank + 1;
  size_t all_bad = 0;
  MPI_Reduce(&bad, &all_bad, 1, MPI_UNSIGNED_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
  if (rank == 0) printf("mem_hold: %s\n", all_bad ? "MEMORY CHANGED" : "ok");
  free(mem);
  MPI_Finalize();
  return all_bad ? 1 : 0;
}
