/* wrapper_overhead: the per-call cost of ompi-cr's MPI wrappers in direct mode. In one
 * process (one rank), each call is timed through its MPI_ name (the wrapper, when the
 * program runs under `mpirun --am ft-enable-cr`) and through its PMPI_ name (straight into
 * Open MPI), alternating blocks, median of the blocks. Without --am both names reach the
 * library, which shows the noise floor.
 *
 *   mpirun -np 1 [--am ft-enable-cr] wrapper_overhead [CALLS_PER_BLOCK [BLOCKS]]
 *
 * Prints one line per call: name, ns/call via MPI_, ns/call via PMPI_, difference. */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

enum {
  kCommRank,
  kIprobe,
  kSendRecvSelf,
  kIsendIrecvWaitall,
  kBarrierSelf,
  kAllreduceSelf,
  kCases
};
static const char* const kNames[kCases] = {"MPI_Comm_rank",
                                           "MPI_Iprobe (no message)",
                                           "MPI_Send+MPI_Recv to self (8 B)",
                                           "MPI_Isend+MPI_Irecv+MPI_Waitall self (8 B)",
                                           "MPI_Barrier(COMM_SELF)",
                                           "MPI_Allreduce(COMM_SELF, 1 double)"};

static double run(int which, int pmpi, long n) {
  int rank, flag;
  double x = 1, y = 0;
  char buf[8] = {0}, in[8];
  MPI_Request rq[2];
  MPI_Status st;
  double t0 = now_ns();
  for (long i = 0; i < n; i++) {
    switch (which) {
      case kCommRank:
        if (pmpi)
          PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
        else
          MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        break;
      case kIprobe:
        if (pmpi)
          PMPI_Iprobe(0, 99, MPI_COMM_WORLD, &flag, &st);
        else
          MPI_Iprobe(0, 99, MPI_COMM_WORLD, &flag, &st);
        break;
      case kSendRecvSelf:
        if (pmpi) {
          PMPI_Send(buf, 8, MPI_BYTE, 0, 1, MPI_COMM_SELF);
          PMPI_Recv(in, 8, MPI_BYTE, 0, 1, MPI_COMM_SELF, MPI_STATUS_IGNORE);
        } else {
          MPI_Send(buf, 8, MPI_BYTE, 0, 1, MPI_COMM_SELF);
          MPI_Recv(in, 8, MPI_BYTE, 0, 1, MPI_COMM_SELF, MPI_STATUS_IGNORE);
        }
        break;
      case kIsendIrecvWaitall:
        if (pmpi) {
          PMPI_Irecv(in, 8, MPI_BYTE, 0, 2, MPI_COMM_SELF, &rq[0]);
          PMPI_Isend(buf, 8, MPI_BYTE, 0, 2, MPI_COMM_SELF, &rq[1]);
          PMPI_Waitall(2, rq, MPI_STATUSES_IGNORE);
        } else {
          MPI_Irecv(in, 8, MPI_BYTE, 0, 2, MPI_COMM_SELF, &rq[0]);
          MPI_Isend(buf, 8, MPI_BYTE, 0, 2, MPI_COMM_SELF, &rq[1]);
          MPI_Waitall(2, rq, MPI_STATUSES_IGNORE);
        }
        break;
      case kBarrierSelf:
        if (pmpi)
          PMPI_Barrier(MPI_COMM_SELF);
        else
          MPI_Barrier(MPI_COMM_SELF);
        break;
      case kAllreduceSelf:
        if (pmpi)
          PMPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_SELF);
        else
          MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_SELF);
        break;
    }
  }
  return (now_ns() - t0) / (double)n;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  long n = argc > 1 ? atol(argv[1]) : 200000;
  int blocks = argc > 2 ? atoi(argv[2]) : 15;
  double* wrapped = malloc(sizeof(double) * (size_t)blocks);
  double* direct = malloc(sizeof(double) * (size_t)blocks);
  printf("%-44s %10s %10s %10s\n", "call", "MPI_ ns", "PMPI_ ns", "diff ns");
  for (int c = 0; c < kCases; c++) {
    run(c, 0, n / 10); /* warm up both paths */
    run(c, 1, n / 10);
    for (int b = 0; b < blocks; b++) {
      wrapped[b] = run(c, 0, n);
      direct[b] = run(c, 1, n);
    }
    qsort(wrapped, (size_t)blocks, sizeof(double), cmp_double);
    qsort(direct, (size_t)blocks, sizeof(double), cmp_double);
    double w = wrapped[blocks / 2], d = direct[blocks / 2];
    printf("%-44s %10.1f %10.1f %+10.1f\n", kNames[c], w, d, w - d);
  }
  free(wrapped);
  free(direct);
  MPI_Finalize();
  return 0;
}
