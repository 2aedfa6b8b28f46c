/* alltoallv: every iteration each rank sends a different number of integers to every
 * rank (counts exchanged with MPI_Alltoall first, then the data with MPI_Alltoallv).
 * Usage: alltoallv [ITERS [WORK]]. Prints the checksum of what every rank received. */
#include "common.h"

static int count_for(int from, int to, long it) {
  return 1 + (int)((from * 7 + to * 3 + it * 5) % 97);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  crcp_args a = crcp_parse(argc, argv, 800, 80);
  int *scount = malloc(sizeof(int) * size), *rcount = malloc(sizeof(int) * size);
  int *sdispl = malloc(sizeof(int) * size), *rdispl = malloc(sizeof(int) * size);
  int64_t *sbuf = malloc(sizeof(int64_t) * 100 * size),
          *rbuf = malloc(sizeof(int64_t) * 100 * size);
  uint64_t h = CRCP_HASH0;
  crcp_print(rank, 0, "alltoallv: %d ranks, %ld iterations\n", size, a.iters);
  for (long it = 0; it < a.iters; it++) {
    int off = 0;
    for (int j = 0; j < size; j++) {
      scount[j] = count_for(rank, j, it);
      sdispl[j] = off;
      for (int k = 0; k < scount[j]; k++)
        sbuf[off + k] = (int64_t)rank * 1000000 + j * 10000 + k + it;
      off += scount[j];
    }
    MPI_Alltoall(scount, 1, MPI_INT, rcount, 1, MPI_INT, MPI_COMM_WORLD);
    off = 0;
    for (int j = 0; j < size; j++) {
      if (rcount[j] != count_for(j, rank, it)) {
        fprintf(stderr, "alltoallv: rank %d got count %d from %d, expected %d\n", rank, rcount[j],
                j, count_for(j, rank, it));
        MPI_Abort(MPI_COMM_WORLD, 3);
      }
      rdispl[j] = off;
      off += rcount[j];
    }
    MPI_Alltoallv(sbuf, scount, sdispl, MPI_INT64_T, rbuf, rcount, rdispl, MPI_INT64_T,
                  MPI_COMM_WORLD);
    h = crcp_hash(rbuf, sizeof(int64_t) * (size_t)off, h);
    crcp_work(a.work, (uint64_t)it);
    if ((it + 1) % crcp_every(a.iters) == 0 || it + 1 == a.iters) {
      char label[32];
      snprintf(label, sizeof label, "iter %ld", it + 1);
      crcp_report(MPI_COMM_WORLD, 0, "alltoallv", label, h);
    }
  }
  free(scount);
  free(rcount);
  free(sdispl);
  free(rdispl);
  free(sbuf);
  free(rbuf);
  crcp_finish(MPI_COMM_WORLD, 0, "alltoallv");
  MPI_Finalize();
  return 0;
}
