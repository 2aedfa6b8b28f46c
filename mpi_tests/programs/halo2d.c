/* halo2d: Jacobi sweeps on a 2-D periodic grid decomposed over a Cartesian
 * communicator; halos are exchanged with MPI_Isend/MPI_Irecv/MPI_Waitall (rows as
 * contiguous data, columns through an MPI_Type_vector). Usage: halo2d [ITERS [WORK]].
 * Prints the checksum of every rank's block (rank order) every few sweeps. */
#include "common.h"

#define L 96 /* interior points per side and rank */
#define W (L + 2)
#define AT(u, i, j) (u)[(size_t)(i)*W + (size_t)(j)]

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int wsize, rank, dims[2] = {0, 0}, periods[2] = {1, 1}, coords[2];
  MPI_Comm_size(MPI_COMM_WORLD, &wsize);
  crcp_args a = crcp_parse(argc, argv, 400, 40);
  MPI_Dims_create(wsize, 2, dims);
  MPI_Comm cart;
  MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, 0, &cart);
  MPI_Comm_rank(cart, &rank);
  MPI_Cart_coords(cart, rank, 2, coords);
  int north, south, west, east;
  MPI_Cart_shift(cart, 0, 1, &north, &south);
  MPI_Cart_shift(cart, 1, 1, &west, &east);
  MPI_Datatype column;
  MPI_Type_vector(L, 1, W, MPI_DOUBLE, &column);
  MPI_Type_commit(&column);

  double *u = calloc((size_t)W * W, sizeof(double)), *v = calloc((size_t)W * W, sizeof(double));
  for (int i = 1; i <= L; i++)
    for (int j = 1; j <= L; j++) {
      long gi = (long)coords[0] * L + i, gj = (long)coords[1] * L + j;
      AT(u, i, j) = (double)((gi * 37 + gj * 11) % 101) / 101.0;
    }
  crcp_print(rank, 0, "halo2d: %d x %d ranks, %d x %d points each, %ld sweeps\n", dims[0], dims[1],
             L, L, a.iters);
  for (long it = 0; it < a.iters; it++) {
    MPI_Request req[8];
    MPI_Irecv(&AT(u, 0, 1), L, MPI_DOUBLE, north, 1, cart, &req[0]);
    MPI_Irecv(&AT(u, L + 1, 1), L, MPI_DOUBLE, south, 2, cart, &req[1]);
    MPI_Irecv(&AT(u, 1, 0), 1, column, west, 3, cart, &req[2]);
    MPI_Irecv(&AT(u, 1, L + 1), 1, column, east, 4, cart, &req[3]);
    MPI_Isend(&AT(u, 1, 1), L, MPI_DOUBLE, north, 2, cart, &req[4]);
    MPI_Isend(&AT(u, L, 1), L, MPI_DOUBLE, south, 1, cart, &req[5]);
    MPI_Isend(&AT(u, 1, 1), 1, column, west, 4, cart, &req[6]);
    MPI_Isend(&AT(u, 1, L), 1, column, east, 3, cart, &req[7]);
    MPI_Waitall(8, req, MPI_STATUSES_IGNORE);
    for (int i = 1; i <= L; i++)
      for (int j = 1; j <= L; j++)
        AT(v, i, j) =
            0.25 * (AT(u, i - 1, j) + AT(u, i + 1, j) + AT(u, i, j - 1) + AT(u, i, j + 1)) +
            1e-3 * (double)((i + j + it) % 7);
    double* t = u;
    u = v;
    v = t;
    crcp_work(a.work, (uint64_t)it);
    if ((it + 1) % crcp_every(a.iters) == 0 || it + 1 == a.iters) {
      uint64_t h = CRCP_HASH0;
      for (int i = 1; i <= L; i++) h = crcp_hash(&AT(u, i, 1), L * sizeof(double), h);
      char label[32];
      snprintf(label, sizeof label, "sweep %ld", it + 1);
      crcp_report(cart, 0, "halo2d", label, h);
    }
  }
  free(u);
  free(v);
  MPI_Type_free(&column);
  crcp_finish(cart, 0, "halo2d");
  MPI_Comm_free(&cart);
  MPI_Finalize();
  return 0;
}
