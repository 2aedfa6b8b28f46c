/* mpi_hello: a small MPI program for the launcher tests (mpi_tests/launch/launch.sh).
 *
 *   mpi_hello [--thread-multiple] [--gate FILE] [--iters N] [--abort CODE] [--exit CODE]
 *
 * Every rank writes its report (report.h) when OCR_REPORT_DIR is set; only rank 0
 * prints, so stdout is the same from run to run and with or without the runtime.
 *   --thread-multiple  MPI_Init_thread(MPI_THREAD_MULTIPLE) instead of MPI_Init
 *   --gate FILE        after every rank reported, rank 0 creates $OCR_REPORT_DIR/ready
 *                      and waits for FILE while the others wait in MPI_Bcast: a window
 *                      for a checkpoint in the middle of the job
 *   --iters N          ring exchanges (small and 4 MiB messages) after the gate
 *   --abort CODE       the last rank calls MPI_Abort(MPI_COMM_WORLD, CODE)
 *   --exit CODE        every rank exits with CODE after MPI_Finalize
 *   --spawn            the ranks start one more process with MPI_Comm_spawn (this
 *                      program with --child: it reports as "child" and ends) */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int main(int argc, char** argv) {
  int thread_multiple = 0, iters = 10, abort_code = -1, exit_code = 0, spawn = 0, child = 0;
  const char* gate = NULL;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--thread-multiple"))
      thread_multiple = 1;
    else if (!strcmp(argv[i], "--gate") && i + 1 < argc)
      gate = argv[++i];
    else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
      iters = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--abort") && i + 1 < argc)
      abort_code = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--exit") && i + 1 < argc)
      exit_code = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--spawn"))
      spawn = 1;
    else if (!strcmp(argv[i], "--child"))
      child = 1;
    else {
      fprintf(stderr, "mpi_hello: unknown argument %s\n", argv[i]);
      return 2;
    }
  }

  int provided = MPI_THREAD_SINGLE;
  if (thread_multiple) {
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  } else {
    MPI_Init(&argc, &argv);
  }
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (child) {
    MPI_Comm parent;
    MPI_Comm_get_parent(&parent);
    ocr_report("child", rank);
    if (parent != MPI_COMM_NULL) {
      MPI_Barrier(parent);
      MPI_Comm_disconnect(&parent);
    }
    MPI_Finalize();
    return 0;
  }
  ocr_report("hello", rank);
  if (spawn) {
    char* child_argv[] = {"--child", NULL};
    MPI_Comm children;
    MPI_Comm_spawn(argv[0], child_argv, 1, MPI_INFO_NULL, 0, MPI_COMM_WORLD, &children,
                   MPI_ERRCODES_IGNORE);
    MPI_Barrier(children);
    MPI_Comm_disconnect(&children);
    if (rank == 0) {
      printf("spawned 1 process\n");
      fflush(stdout);
    }
  }

  int sum = 0;
  MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) {
    printf("hello from %d ranks, rank sum %d\n", size, sum);
    if (thread_multiple)
      printf("thread level %s\n", provided == MPI_THREAD_MULTIPLE ? "multiple" : "lower");
    fflush(stdout);
  }

  if (abort_code >= 0) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == size - 1) MPI_Abort(MPI_COMM_WORLD, abort_code);
    for (;;) sleep_ms(1000); /* killed by mpirun */
  }

  int go = 0;
  if (gate) {
    MPI_Barrier(MPI_COMM_WORLD); /* every report is written */
    if (rank == 0) {
      const char* dir = getenv("OCR_REPORT_DIR");
      char ready[4096];
      snprintf(ready, sizeof ready, "%s/ready", dir ? dir : ".");
      FILE* f = fopen(ready, "w");
      if (f) fclose(f);
      while (access(gate, F_OK) != 0) sleep_ms(10);
      go = 1;
    }
  } else {
    go = 1;
  }
  MPI_Bcast(&go, 1, MPI_INT, 0, MPI_COMM_WORLD);

  /* Ring exchanges: small messages (eager) and 4 MiB ones (rendezvous, single copy). */
  enum { kSmall = 1000, kLarge = 4 << 20 };
  double small_out[kSmall], small_in[kSmall];
  unsigned char* large_out = malloc(kLarge);
  unsigned char* large_in = malloc(kLarge);
  uint64_t check = 0;
  const int right = (rank + 1) % size, left = (rank + size - 1) % size;
  for (int it = 0; it < iters; ++it) {
    for (int k = 0; k < kSmall; ++k) small_out[k] = rank * 1000.0 + it + k * 0.5;
    for (int k = 0; k < kLarge; k += 4096) large_out[k] = (unsigned char)(rank + it + k / 4096);
    MPI_Sendrecv(small_out, kSmall, MPI_DOUBLE, right, 1, small_in, kSmall, MPI_DOUBLE, left, 1,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Sendrecv(large_out, kLarge, MPI_BYTE, right, 2, large_in, kLarge, MPI_BYTE, left, 2,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    for (int k = 0; k < kSmall; ++k) check += (uint64_t)small_in[k];
    for (int k = 0; k < kLarge; k += 4096) check += large_in[k];
  }
  free(large_out);
  free(large_in);
  uint64_t total = 0;
  MPI_Reduce(&check, &total, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    printf("%d ring iterations, checksum %llu\n", iters, (unsigned long long)total);
    fflush(stdout);
  }
  ocr_report_add("hello", "libc_text_dirty_kb_end", ocr_libc_text_dirty_kb());
  if (rank == 0 && exit_code) {
    /* before MPI_Finalize: mpirun ends the job at the first non-zero exit */
    printf("exiting with %d\n", exit_code);
    fflush(stdout);
  }
  MPI_Finalize();
  return exit_code;
}
