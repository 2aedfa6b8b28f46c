/* ring: a token of 64 words travels around all ranks with blocking MPI_Send/MPI_Recv;
 * each rank mixes its rank and the iteration in and computes before passing it on.
 * Usage: ring [ITERS [WORK]]. Rank 0 prints the token's checksum every few laps. */
#include "common.h"

#define WORDS 64

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  crcp_args a = crcp_parse(argc, argv, 400, 100);
  const int right = (rank + 1) % size, left = (rank + size - 1) % size;
  uint64_t token[WORDS];
  for (int i = 0; i < WORDS; i++) token[i] = (uint64_t)i * 0x9e3779b97f4a7c15ULL;
  uint64_t seen = CRCP_HASH0; /* what this rank saw pass by */
  crcp_print(rank, 0, "ring: %d ranks, %ld laps\n", size, a.iters);
  for (long it = 0; it < a.iters; it++) {
    if (rank != 0 || size == 1) {
      if (size > 1)
        MPI_Recv(token, WORDS, MPI_UINT64_T, left, (int)(it % 1000), MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    }
    for (int i = 0; i < WORDS; i++)
      token[i] = token[i] * 6364136223846793005ULL + (uint64_t)(rank * 131 + it + i);
    crcp_work(a.work, token[0]);
    seen = crcp_hash(token, sizeof token, seen);
    if (size > 1) {
      MPI_Send(token, WORDS, MPI_UINT64_T, right, (int)(it % 1000), MPI_COMM_WORLD);
      if (rank == 0)
        MPI_Recv(token, WORDS, MPI_UINT64_T, left, (int)(it % 1000), MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    }
    if ((it + 1) % crcp_every(a.iters) == 0 || it + 1 == a.iters) {
      char label[64];
      snprintf(label, sizeof label, "lap %ld token %016llx seen", it + 1,
               (unsigned long long)crcp_hash(token, sizeof token, CRCP_HASH0));
      /* only rank 0's token is final for this lap; the others print what they saw */
      crcp_report(MPI_COMM_WORLD, 0, "ring", label, seen);
    }
  }
  crcp_finish(MPI_COMM_WORLD, 0, "ring");
  MPI_Finalize();
  return 0;
}
