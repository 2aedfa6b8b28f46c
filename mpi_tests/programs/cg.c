/* cg: conjugate gradient for the 1-D Laplacian tridiag(-1, 2, -1) distributed in blocks
 * over the ranks; neighbour values via MPI_Sendrecv, dot products via MPI_Allreduce.
 * Usage: cg [ITERS [WORK]]. Prints the residual norm (%.15e, bitwise reproducible for a
 * given number of ranks) every few iterations and a checksum of the solution. */
#define _POSIX_C_SOURCE 200809L /* before any system header: see common.h */
#include <math.h>

#include "common.h"

#define NLOC 20000

static double dot(const double* x, const double* y, int n) {
  double local = 0, global = 0;
  for (int i = 0; i < n; i++) local += x[i] * y[i];
  MPI_Allreduce(&local, &global, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return global;
}

/* q = A p, with p's neighbour values fetched from the adjacent ranks */
static void matvec(const double* p, double* q, int n, int left, int right) {
  double from_left = 0, from_right = 0;
  MPI_Sendrecv(&p[n - 1], 1, MPI_DOUBLE, right, 1, &from_left, 1, MPI_DOUBLE, left, 1,
               MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  MPI_Sendrecv(&p[0], 1, MPI_DOUBLE, left, 2, &from_right, 1, MPI_DOUBLE, right, 2, MPI_COMM_WORLD,
               MPI_STATUS_IGNORE);
  for (int i = 0; i < n; i++) {
    double l = i > 0 ? p[i - 1] : from_left, r = i < n - 1 ? p[i + 1] : from_right;
    q[i] = 2.0 * p[i] - l - r;
  }
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  crcp_args a = crcp_parse(argc, argv, 800, 20);
  const int n = NLOC;
  const int left = rank > 0 ? rank - 1 : MPI_PROC_NULL,
            right = rank < size - 1 ? rank + 1 : MPI_PROC_NULL;
  double *x = calloc(n, sizeof(double)), *r = malloc(n * sizeof(double)),
         *p = malloc(n * sizeof(double)), *q = malloc(n * sizeof(double));
  for (int i = 0; i < n; i++) {
    long g = (long)rank * n + i;
    r[i] = 1.0 + 0.5 * sin(0.001 * (double)g); /* b, with x0 = 0 */
    p[i] = r[i];
  }
  double rr = dot(r, r, n);
  crcp_print(rank, 0, "cg: n=%ld on %d ranks, %ld iterations, |b|=%.15e\n", (long)n * size, size,
             a.iters, sqrt(rr));
  long it;
  for (it = 0; it < a.iters && rr > 0; it++) {
    matvec(p, q, n, left, right);
    double alpha = rr / dot(p, q, n);
    for (int i = 0; i < n; i++) {
      x[i] += alpha * p[i];
      r[i] -= alpha * q[i];
    }
    double rr_new = dot(r, r, n);
    double beta = rr_new / rr;
    rr = rr_new;
    for (int i = 0; i < n; i++) p[i] = r[i] + beta * p[i];
    crcp_work(a.work, (uint64_t)it);
    if ((it + 1) % crcp_every(a.iters) == 0 || it + 1 == a.iters)
      crcp_print(rank, 0, "cg: iter %ld residual %.15e\n", it + 1, sqrt(rr));
  }
  crcp_report(MPI_COMM_WORLD, 0, "cg", "x", crcp_hash(x, n * sizeof(double), CRCP_HASH0));
  free(x);
  free(r);
  free(p);
  free(q);
  crcp_finish(MPI_COMM_WORLD, 0, "cg");
  MPI_Finalize();
  return 0;
}
