/* Shared helpers of the checkpoint/restart MPI test programs (mpi_tests/programs):
 * argument parsing, deterministic busy work, checksums, output by one rank, and the
 * optional end gate (CRCP_GATE) that keeps a job alive until a test's checkpoints are
 * done. Everything printed depends only on the arguments and the number of ranks. */
#ifndef CRCP_COMMON_H
#define CRCP_COMMON_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  long iters; /* argv[1]: iterations (or rounds, tasks) */
  long work;  /* argv[2]: busy-work units per iteration (about 10 us each) */
} crcp_args;

/* Parses "PROG [ITERS [WORK]]"; a bad argument ends the job with a message. */
static inline crcp_args crcp_parse(int argc, char** argv, long iters, long work) {
  crcp_args a = {iters, work};
  for (int i = 1; i < argc && i <= 2; i++) {
    char* end = NULL;
    long v = strtol(argv[i], &end, 10);
    if (end == argv[i] || *end != '\0' || v < (i == 1 ? 1 : 0)) {
      fprintf(stderr, "%s: bad argument '%s' (usage: %s [ITERS>=1 [WORK>=0]])\n", argv[0], argv[i],
              argv[0]);
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
    if (i == 1)
      a.iters = v;
    else
      a.work = v;
  }
  return a;
}

/* Keeps crcp_work's result observable without putting it into the output. */
static volatile uint64_t crcp_sink;

/* Deterministic CPU work without MPI calls: UNITS x 4096 steps of a dependent xorshift
 * chain. */
static inline uint64_t crcp_work(long units, uint64_t seed) {
  uint64_t x = seed | 1;
  for (long i = 0; i < units * 4096; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  crcp_sink ^= x;
  return x;
}

/* FNV-1a over bytes, chained through H (start with CRCP_HASH0). */
#define CRCP_HASH0 UINT64_C(14695981039346656037)
static inline uint64_t crcp_hash(const void* p, size_t n, uint64_t h) {
  const unsigned char* b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= UINT64_C(1099511628211);
  }
  return h;
}
static inline uint64_t crcp_hash_u64(uint64_t v, uint64_t h) {
  return crcp_hash(&v, sizeof v, h);
}

/* printf by one rank, flushed at once (tests count lines while the job runs). */
static inline void crcp_print(int rank, int printer, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void crcp_print(int rank, int printer, const char* fmt, ...) {
  if (rank != printer) return;
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

/* Gathers one value per rank at PRINTER and prints "NAME: LABEL h0 h1 ..." in rank
 * order. Collective over COMM. */
static inline void crcp_report(MPI_Comm comm, int printer, const char* name, const char* label,
                               uint64_t local) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  uint64_t* all = rank == printer ? malloc(sizeof(uint64_t) * (size_t)size) : NULL;
  MPI_Gather(&local, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, printer, comm);
  if (rank == printer) {
    printf("%s: %s", name, label);
    for (int i = 0; i < size; i++) printf(" %016llx", (unsigned long long)all[i]);
    printf("\n");
    fflush(stdout);
    free(all);
  }
}

/* Iterations between two report lines: about 16 lines per run. */
static inline long crcp_every(long iters) {
  return iters >= 16 ? iters / 16 : 1;
}

static inline void crcp_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The end gate: when CRCP_GATE names a file, the job waits here (making an MPI call
 * every 20 ms, so that a checkpoint can always reach every rank) until that file
 * exists. Rank 0 decides. Prints nothing. Collective over COMM. */
static inline void crcp_gate(MPI_Comm comm) {
  const char* gate = getenv("CRCP_GATE");
  int rank;
  MPI_Comm_rank(comm, &rank);
  for (;;) {
    /* an Allreduce, not a Bcast from rank 0: nobody runs ahead of the others */
    int open = rank == 0 && (gate == NULL || gate[0] == '\0' || access(gate, F_OK) == 0), any = 0;
    MPI_Allreduce(&open, &any, 1, MPI_INT, MPI_MAX, comm);
    if (any) break;
    crcp_sleep_ms(20);
  }
}

/* The gate, then the last line "NAME: done" by PRINTER. */
static inline void crcp_finish(MPI_Comm comm, int printer, const char* name) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  crcp_gate(comm);
  crcp_print(rank, printer, "%s: done\n", name);
}

#endif
