/* subcomm_p2p: collectives on disjoint sub-communicators mixed with point-to-point
 * between them — the pattern where a rank behind on one communicator needs a message
 * that a rank of the other sends only after its next collective (docs/protocol.md §6).
 * 4 ranks: D = {0,1}, C = {2,3}. Each iteration: 0 and 1 Allreduce on D, then 0 sends to
 * 2; 2 receives from 0, then 2 and 3 Allreduce on C. Rank 0 prints a checksum every few
 * iterations. Usage: subcomm_p2p ITERS WORK_US */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void spin_us(long us) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do {
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  long iters = argc > 1 ? atol(argv[1]) : 1000, work = argc > 2 ? atol(argv[2]) : 200;
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 4) {
    if (rank == 0) fprintf(stderr, "subcomm_p2p needs 4 ranks\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  MPI_Comm half;
  MPI_Comm_split(MPI_COMM_WORLD, rank / 2, rank, &half);
  uint64_t v = (uint64_t)rank * 1000003u + 17, sum = 0, got = 0;
  for (long it = 0; it < iters; it++) {
    spin_us(work * (1 + rank)); /* unequal: ranks drift apart */
    v = v * 6364136223846793005ULL + (uint64_t)it;
    if (rank < 2) {
      MPI_Allreduce(&v, &sum, 1, MPI_UINT64_T, MPI_SUM, half);
      if (rank == 0) MPI_Send(&sum, 1, MPI_UINT64_T, 2, (int)(it % 100), MPI_COMM_WORLD);
    } else {
      if (rank == 2) {
        MPI_Recv(&got, 1, MPI_UINT64_T, 0, (int)(it % 100), MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        v ^= got;
      }
      MPI_Allreduce(&v, &sum, 1, MPI_UINT64_T, MPI_SUM, half);
    }
    if ((it + 1) % (iters / 10 > 0 ? iters / 10 : 1) == 0) {
      uint64_t all[4];
      MPI_Gather(&sum, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
      if (rank == 0) {
        printf("iter %ld: %016llx %016llx %016llx %016llx\n", it + 1, (unsigned long long)all[0],
               (unsigned long long)all[1], (unsigned long long)all[2], (unsigned long long)all[3]);
        fflush(stdout);
      }
    }
  }
  MPI_Comm_free(&half);
  if (rank == 0) {
    printf("subcomm_p2p: done\n");
    fflush(stdout);
  }
  MPI_Finalize();
  return 0;
}
