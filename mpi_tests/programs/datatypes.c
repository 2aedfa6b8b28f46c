/* datatypes: every iteration each rank sends messages built from derived datatypes
 * (contiguous, vector, hvector, indexed, indexed_block, struct + create_resized,
 * subarray, a resized vector that transposes, a dup) to its right neighbour and
 * receives them from its left one, some into the same type, some into plain doubles
 * (matching type signatures). Usage: datatypes [ITERS [WORK]]. Prints checksums of the
 * received buffers (gaps stay zero, so they are part of the checksum). */
#include <stddef.h>

#include "common.h"

#define NBUF 1024
#define NREC 10

struct rec {
  int a;
  double b;
  char c[3];
  long d;
};

enum {
  T_CONTIG,
  T_VECTOR,
  T_HVECTOR,
  T_INDEXED,
  T_IBLOCK,
  T_STRUCT,
  T_SUBARRAY,
  T_TRANSPOSE,
  T_DUP,
  NTYPES
};
static const char* type_name[NTYPES] = {"contiguous", "vector",        "hvector",
                                        "indexed",    "indexed_block", "struct",
                                        "subarray",   "transpose",     "dup"};

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  crcp_args a = crcp_parse(argc, argv, 800, 60);
  const int right = (rank + 1) % size, left = (rank + size - 1) % size;

  MPI_Datatype t[NTYPES], tmp;
  int count[NTYPES];
  MPI_Type_contiguous(100, MPI_DOUBLE, &t[T_CONTIG]);
  count[T_CONTIG] = 2;
  MPI_Type_vector(32, 2, 5, MPI_DOUBLE, &t[T_VECTOR]);
  count[T_VECTOR] = 1;
  MPI_Type_create_hvector(16, 3, 7 * (MPI_Aint)sizeof(double), MPI_DOUBLE, &t[T_HVECTOR]);
  count[T_HVECTOR] = 2;
  int blens[4] = {1, 3, 2, 5}, displs[4] = {0, 4, 11, 20};
  MPI_Type_indexed(4, blens, displs, MPI_DOUBLE, &t[T_INDEXED]);
  count[T_INDEXED] = 3;
  int bdispl[6] = {0, 3, 9, 14, 30, 41};
  MPI_Type_create_indexed_block(6, 2, bdispl, MPI_DOUBLE, &t[T_IBLOCK]);
  count[T_IBLOCK] = 4;
  int sl[4] = {1, 1, 3, 1};
  MPI_Aint sd[4] = {offsetof(struct rec, a), offsetof(struct rec, b), offsetof(struct rec, c),
                    offsetof(struct rec, d)};
  MPI_Datatype st[4] = {MPI_INT, MPI_DOUBLE, MPI_CHAR, MPI_LONG};
  MPI_Type_create_struct(4, sl, sd, st, &tmp);
  MPI_Type_create_resized(tmp, 0, sizeof(struct rec), &t[T_STRUCT]);
  MPI_Type_free(&tmp);
  count[T_STRUCT] = NREC;
  int sizes[2] = {16, 16}, sub[2] = {6, 5}, start[2] = {3, 4};
  MPI_Type_create_subarray(2, sizes, sub, start, MPI_ORDER_C, MPI_DOUBLE, &t[T_SUBARRAY]);
  count[T_SUBARRAY] = 1;
  MPI_Type_vector(4, 1, 4, MPI_DOUBLE, &tmp); /* one column of a 4x4 matrix */
  MPI_Type_create_resized(tmp, 0, sizeof(double), &t[T_TRANSPOSE]);
  MPI_Type_free(&tmp);
  count[T_TRANSPOSE] = 4;
  MPI_Type_dup(t[T_VECTOR], &t[T_DUP]);
  count[T_DUP] = 2;
  for (int k = 0; k < NTYPES; k++) MPI_Type_commit(&t[k]);

  double *src = malloc(sizeof(double) * NBUF), *dst = malloc(sizeof(double) * NBUF * (NTYPES + 1));
  struct rec srec[NREC];
  memset(srec, 0, sizeof srec);
  uint64_t h[NTYPES + 1];
  for (int k = 0; k <= NTYPES; k++) h[k] = CRCP_HASH0;
  crcp_print(rank, 0, "datatypes: %d ranks, %ld iterations\n", size, a.iters);
  for (long it = 0; it < a.iters; it++) {
    for (int i = 0; i < NBUF; i++) src[i] = (double)(rank * 100000 + i) + 0.25 * (double)it;
    for (int i = 0; i < NREC; i++) {
      srec[i].a = rank * 10 + i;
      srec[i].b = 0.5 * (double)(it + i);
      srec[i].c[0] = (char)('a' + i);
      srec[i].c[1] = (char)('A' + (it % 26));
      srec[i].c[2] = (char)rank;
      srec[i].d = it * 1000 + i;
    }
    memset(dst, 0, sizeof(double) * NBUF * (NTYPES + 1));
    MPI_Request req[NTYPES + 1];
    for (int k = 0; k < NTYPES; k++) {
      const void* buf = k == T_STRUCT ? (const void*)srec : (const void*)src;
      MPI_Isend(buf, count[k], t[k], right, k, MPI_COMM_WORLD, &req[k]);
    }
    int vec_size;
    MPI_Type_size(t[T_VECTOR], &vec_size);
    MPI_Isend(src + 1, 1, t[T_VECTOR], right, NTYPES, MPI_COMM_WORLD, &req[NTYPES]);
    for (int k = 0; k < NTYPES; k++)
      MPI_Recv(dst + (size_t)k * NBUF, count[k], t[k], left, k, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    /* the same vector received as plain doubles */
    MPI_Status status;
    int got;
    MPI_Recv(dst + (size_t)NTYPES * NBUF, NBUF, MPI_DOUBLE, left, NTYPES, MPI_COMM_WORLD, &status);
    MPI_Get_count(&status, MPI_DOUBLE, &got);
    if (got * (int)sizeof(double) != vec_size) {
      fprintf(stderr, "datatypes: rank %d received %d doubles, expected %d\n", rank, got,
              vec_size / (int)sizeof(double));
      MPI_Abort(MPI_COMM_WORLD, 3);
    }
    MPI_Waitall(NTYPES + 1, req, MPI_STATUSES_IGNORE);
    for (int k = 0; k <= NTYPES; k++)
      h[k] = crcp_hash(dst + (size_t)k * NBUF, sizeof(double) * NBUF, h[k]);
    crcp_work(a.work, (uint64_t)it);
    if ((it + 1) % crcp_every(a.iters) == 0 || it + 1 == a.iters) {
      for (int k = 0; k <= NTYPES; k++) {
        char label[64];
        snprintf(label, sizeof label, "iter %ld %s", it + 1,
                 k < NTYPES ? type_name[k] : "vector-as-doubles");
        crcp_report(MPI_COMM_WORLD, 0, "datatypes", label, h[k]);
      }
    }
  }
  for (int k = 0; k < NTYPES; k++) MPI_Type_free(&t[k]);
  free(src);
  free(dst);
  crcp_finish(MPI_COMM_WORLD, 0, "datatypes");
  MPI_Finalize();
  return 0;
}
