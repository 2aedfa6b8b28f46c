/* unequal_compute: ranks compute for long and very unequal times (rank r about r+1
 * times as long, varying per iteration) between collectives: MPI_Allreduce,
 * MPI_Barrier, MPI_Bcast from a rotating root. A checkpoint finds some ranks deep in
 * computation and others waiting in a collective. Usage: unequal_compute [ITERS [WORK]]. */
#include "common.h"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  crcp_args a = crcp_parse(argc, argv, 64, 1000);
  uint64_t state = (uint64_t)rank + 1, h = CRCP_HASH0;
  crcp_print(rank, 0, "unequal_compute: %d ranks, %ld iterations\n", size, a.iters);
  for (long it = 0; it < a.iters; it++) {
    long units = a.work * (rank + 1) * (1 + (it + rank) % 3) / 3;
    state = crcp_hash_u64(crcp_work(units, state + (uint64_t)it), state);
    uint64_t sum = 0, x = 0;
    MPI_Allreduce(&state, &sum, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&state, &x, 1, MPI_UINT64_T, MPI_BXOR, MPI_COMM_WORLD);
    if (it % 2 == 0) MPI_Barrier(MPI_COMM_WORLD);
    uint64_t b = state;
    MPI_Bcast(&b, 1, MPI_UINT64_T, (int)(it % size), MPI_COMM_WORLD);
    h = crcp_hash_u64(sum, crcp_hash_u64(x, crcp_hash_u64(b, h)));
    if ((it + 1) % crcp_every(a.iters) == 0 || it + 1 == a.iters) {
      char label[32];
      snprintf(label, sizeof label, "iter %ld", it + 1);
      crcp_report(MPI_COMM_WORLD, 0, "unequal_compute", label, h);
    }
  }
  crcp_finish(MPI_COMM_WORLD, 0, "unequal_compute");
  MPI_Finalize();
  return 0;
}
