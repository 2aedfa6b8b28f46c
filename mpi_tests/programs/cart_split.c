/* cart_split: every iteration builds communicators and uses them: MPI_Comm_split
 * (even/odd ranks), MPI_Cart_create (2-D), MPI_Cart_sub into rows and columns,
 * collectives on each (Allreduce, Bcast, Allgather, Reduce, Scan), then frees them all
 * with MPI_Comm_free. Usage: cart_split [ITERS [WORK]]. Prints checksums in rank order. */
#include "common.h"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int wrank, wsize;
  MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
  MPI_Comm_size(MPI_COMM_WORLD, &wsize);
  crcp_args a = crcp_parse(argc, argv, 600, 60);
  int dims[2] = {0, 0}, periods[2] = {1, 0};
  MPI_Dims_create(wsize, 2, dims);
  uint64_t h = CRCP_HASH0;
  crcp_print(wrank, 0, "cart_split: %d ranks, grid %d x %d, %ld iterations\n", wsize, dims[0],
             dims[1], a.iters);
  for (long it = 0; it < a.iters; it++) {
    MPI_Comm half, cart, row, col;
    MPI_Comm_split(MPI_COMM_WORLD, wrank % 2, (int)((wsize - wrank + it) % wsize), &half);
    MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, 0, &cart);
    int keep_row[2] = {0, 1}, keep_col[2] = {1, 0};
    MPI_Cart_sub(cart, keep_row, &row);
    MPI_Cart_sub(cart, keep_col, &col);
    int hrank, hsize, rrank, crank, carank;
    MPI_Comm_rank(half, &hrank);
    MPI_Comm_size(half, &hsize);
    MPI_Comm_rank(row, &rrank);
    MPI_Comm_rank(col, &crank);
    MPI_Comm_rank(cart, &carank);

    int64_t mine = (int64_t)wrank * 1000 + it, sum = 0, scan = 0, bc = 0, red = 0;
    MPI_Allreduce(&mine, &sum, 1, MPI_INT64_T, MPI_SUM, row);
    bc = crank == (int)(it % dims[0]) ? mine * 3 : -1;
    MPI_Bcast(&bc, 1, MPI_INT64_T, (int)(it % dims[0]), col);
    int64_t* all = malloc(sizeof(int64_t) * (size_t)hsize);
    MPI_Allgather(&mine, 1, MPI_INT64_T, all, 1, MPI_INT64_T, half);
    MPI_Reduce(&mine, &red, 1, MPI_INT64_T, MPI_MAX, 0, cart);
    MPI_Scan(&mine, &scan, 1, MPI_INT64_T, MPI_SUM, half);
    h = crcp_hash_u64((uint64_t)sum, h);
    h = crcp_hash_u64((uint64_t)bc, h);
    h = crcp_hash(all, sizeof(int64_t) * (size_t)hsize, h);
    h = crcp_hash_u64(carank == 0 ? (uint64_t)red : 0, h);
    h = crcp_hash_u64((uint64_t)scan, h);
    h = crcp_hash_u64((uint64_t)(hrank * 64 + rrank * 8 + crank), h);
    free(all);
    crcp_work(a.work, (uint64_t)it);
    MPI_Comm_free(&row);
    MPI_Comm_free(&col);
    MPI_Comm_free(&cart);
    MPI_Comm_free(&half);
    if ((it + 1) % crcp_every(a.iters) == 0 || it + 1 == a.iters) {
      char label[32];
      snprintf(label, sizeof label, "iter %ld", it + 1);
      crcp_report(MPI_COMM_WORLD, 0, "cart_split", label, h);
    }
  }
  crcp_finish(MPI_COMM_WORLD, 0, "cart_split");
  MPI_Finalize();
  return 0;
}
