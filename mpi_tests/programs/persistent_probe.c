/* persistent_probe: a tour of less common point-to-point and collective calls, every
 * iteration, between ring neighbours: persistent requests (Send_init/Recv_init,
 * Startall, Waitall, Request_free at the end), Iprobe + Improbe + Mrecv of a message of
 * varying size, Sendrecv, Sendrecv_replace, Bsend with an attached buffer, Ssend,
 * MPI_Cancel of a receive nobody matches, Testany/Testsome/Waitany/Waitsome, a send whose
 * request is freed at once, a user-defined reduction (MPI_Op_create) in MPI_Allreduce,
 * and nonblocking collectives (Iallreduce, Ibcast, Ibarrier) in flight together.
 * Usage: persistent_probe [ITERS [WORK]] (2 ranks or more). */
#include "common.h"

#define PW 32    /* words of the persistent messages */
#define NQ 4     /* requests in the any/some groups */
#define FREED 16 /* slots for sends whose request is freed */

/* Lane-wise min, max, sum and xor of 4-word vectors: commutative and associative. */
static void lanes_op(void* in, void* inout, int* len, MPI_Datatype* type) {
  (void)type;
  const uint64_t* a = in;
  uint64_t* b = inout;
  for (int i = 0; i < *len; i++, a += 4, b += 4) {
    b[0] = a[0] < b[0] ? a[0] : b[0];
    b[1] = a[1] > b[1] ? a[1] : b[1];
    b[2] += a[2];
    b[3] ^= a[3];
  }
}

static void check(int ok, int rank, const char* what) {
  if (!ok) {
    fprintf(stderr, "persistent_probe: rank %d: %s\n", rank, what);
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  crcp_args a = crcp_parse(argc, argv, 800, 60);
  if (size < 2) {
    fprintf(stderr, "persistent_probe: needs 2 ranks or more\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const int right = (rank + 1) % size, left = (rank + size - 1) % size;
  MPI_Comm comm = MPI_COMM_WORLD;

  /* persistent requests, created once */
  uint64_t psend[PW], precv[PW];
  MPI_Request persist[2];
  MPI_Send_init(psend, PW, MPI_UINT64_T, right, 100, comm, &persist[0]);
  MPI_Recv_init(precv, PW, MPI_UINT64_T, left, 100, comm, &persist[1]);

  /* buffered sends: room for four messages of 16 words */
  int pack;
  MPI_Pack_size(16, MPI_UINT64_T, comm, &pack);
  int bsize = 4 * (pack + MPI_BSEND_OVERHEAD);
  void* bbuf = malloc((size_t)bsize);
  MPI_Buffer_attach(bbuf, bsize);

  /* the user reduction over a 4-word vector type */
  MPI_Datatype vec4;
  MPI_Type_contiguous(4, MPI_UINT64_T, &vec4);
  MPI_Type_commit(&vec4);
  MPI_Op lanes;
  MPI_Op_create(lanes_op, 1, &lanes);

  uint64_t freed_buf[FREED][4];
  uint64_t h = CRCP_HASH0;
  long cancelled = 0;
  crcp_print(rank, 0, "persistent_probe: %d ranks, %ld iterations\n", size, a.iters);
  for (long it = 0; it < a.iters; it++) {
    const uint64_t base = (uint64_t)rank * 1000003u + (uint64_t)it * 7919u;

    /* 1. persistent send/receive */
    for (int i = 0; i < PW; i++) psend[i] = base + (uint64_t)i;
    MPI_Startall(2, persist);
    MPI_Waitall(2, persist, MPI_STATUSES_IGNORE);
    h = crcp_hash(precv, sizeof precv, h);

    /* 2. Iprobe until it is there, then Improbe + Mrecv of a message of varying size */
    {
      int n = 1 + (int)((it * 13 + rank * 5) % 50);
      uint64_t out[64], in[64];
      for (int i = 0; i < n; i++) out[i] = base ^ (uint64_t)i;
      MPI_Request r;
      MPI_Isend(out, n, MPI_UINT64_T, right, 200, comm, &r);
      int flag = 0;
      MPI_Status st;
      while (!flag) MPI_Iprobe(left, 200, comm, &flag, &st);
      MPI_Message msg;
      flag = 0;
      while (!flag) MPI_Improbe(left, 200, comm, &flag, &msg, &st);
      int got;
      MPI_Get_count(&st, MPI_UINT64_T, &got);
      check(got == 1 + (int)((it * 13 + left * 5) % 50), rank, "Improbe: wrong count");
      MPI_Mrecv(in, got, MPI_UINT64_T, &msg, MPI_STATUS_IGNORE);
      MPI_Wait(&r, MPI_STATUS_IGNORE);
      h = crcp_hash(in, sizeof(uint64_t) * (size_t)got, h);
    }

    /* 3. Sendrecv and Sendrecv_replace */
    {
      uint64_t s[8], r[8];
      for (int i = 0; i < 8; i++) s[i] = base * 3 + (uint64_t)i;
      MPI_Sendrecv(s, 8, MPI_UINT64_T, right, 300, r, 8, MPI_UINT64_T, left, 300, comm,
                   MPI_STATUS_IGNORE);
      MPI_Sendrecv_replace(s, 8, MPI_UINT64_T, left, 301, right, 301, comm, MPI_STATUS_IGNORE);
      h = crcp_hash(r, sizeof r, crcp_hash(s, sizeof s, h));
    }

    /* 4. Bsend, then Ssend (even ranks send first, so the ring cannot deadlock) */
    {
      uint64_t s[16], r[16];
      for (int i = 0; i < 16; i++) s[i] = base + 17u * (uint64_t)i;
      MPI_Bsend(s, 16, MPI_UINT64_T, right, 400, comm);
      MPI_Recv(r, 16, MPI_UINT64_T, left, 400, comm, MPI_STATUS_IGNORE);
      h = crcp_hash(r, sizeof r, h);
      if (rank % 2 == 0) {
        MPI_Ssend(s, 16, MPI_UINT64_T, right, 401, comm);
        MPI_Recv(r, 16, MPI_UINT64_T, left, 401, comm, MPI_STATUS_IGNORE);
      } else {
        MPI_Recv(r, 16, MPI_UINT64_T, left, 401, comm, MPI_STATUS_IGNORE);
        MPI_Ssend(s, 16, MPI_UINT64_T, right, 401, comm);
      }
      h = crcp_hash(r, sizeof r, h);
    }

    /* 5. a receive nobody will match, cancelled */
    {
      uint64_t never[2];
      MPI_Request r;
      MPI_Status st;
      int was;
      MPI_Irecv(never, 2, MPI_UINT64_T, left, 999, comm, &r);
      MPI_Cancel(&r);
      MPI_Wait(&r, &st);
      MPI_Test_cancelled(&st, &was);
      check(was, rank, "a receive that matched nothing was not cancelled");
      cancelled++;
    }

    /* 6. Waitany / Waitsome / Testany / Testsome */
    {
      uint64_t s[NQ][4], r[NQ][4];
      MPI_Request rr[NQ], sr[NQ];
      int done = 0, idx, outcount, indices[NQ];
      for (int q = 0; q < NQ; q++) {
        for (int i = 0; i < 4; i++) s[q][i] = base + (uint64_t)(q * 4 + i);
        MPI_Irecv(r[q], 4, MPI_UINT64_T, left, 500 + q, comm, &rr[q]);
      }
      for (int q = NQ - 1; q >= 0; q--)
        MPI_Isend(s[q], 4, MPI_UINT64_T, right, 500 + q, comm, &sr[q]);
      if (it % 2 == 0) {
        while (done < NQ) {
          MPI_Waitany(NQ, rr, &idx, MPI_STATUS_IGNORE);
          check(idx != MPI_UNDEFINED, rank, "Waitany: no request");
          done++;
        }
        for (done = 0; done < NQ; done += outcount) {
          MPI_Waitsome(NQ, sr, &outcount, indices, MPI_STATUSES_IGNORE);
          check(outcount != MPI_UNDEFINED, rank, "Waitsome: no request");
        }
      } else {
        while (done < NQ) {
          int flag = 0;
          MPI_Testany(NQ, rr, &idx, &flag, MPI_STATUS_IGNORE);
          if (flag) {
            check(idx != MPI_UNDEFINED, rank, "Testany: no request");
            done++;
          }
        }
        for (done = 0; done < NQ;) {
          MPI_Testsome(NQ, sr, &outcount, indices, MPI_STATUSES_IGNORE);
          check(outcount != MPI_UNDEFINED, rank, "Testsome: no request");
          done += outcount;
        }
      }
      h = crcp_hash(r, sizeof r, h);
    }

    /* 7. a send whose request is freed at once (its buffer is not reused for FREED
     *    iterations) */
    {
      uint64_t *s = freed_buf[it % FREED], r[4];
      for (int i = 0; i < 4; i++) s[i] = base + 31u * (uint64_t)i;
      MPI_Request req;
      MPI_Isend(s, 4, MPI_UINT64_T, right, 600, comm, &req);
      MPI_Request_free(&req);
      MPI_Recv(r, 4, MPI_UINT64_T, left, 600, comm, MPI_STATUS_IGNORE);
      h = crcp_hash(r, sizeof r, h);
    }

    /* 8. the user-defined reduction, then three nonblocking collectives at once */
    {
      uint64_t in[2][4], out[2][4];
      for (int v = 0; v < 2; v++)
        for (int i = 0; i < 4; i++)
          in[v][i] = crcp_hash_u64(base + (uint64_t)(v * 4 + i), CRCP_HASH0);
      MPI_Allreduce(in, out, 2, vec4, lanes, comm);
      h = crcp_hash(out, sizeof out, h);
      uint64_t sum_in = base, sum_out = 0, bc = rank == (int)(it % size) ? base : 0;
      MPI_Request nb[3];
      MPI_Iallreduce(&sum_in, &sum_out, 1, MPI_UINT64_T, MPI_SUM, comm, &nb[0]);
      MPI_Ibcast(&bc, 1, MPI_UINT64_T, (int)(it % size), comm, &nb[1]);
      MPI_Ibarrier(comm, &nb[2]);
      crcp_work(a.work, base); /* compute while they progress */
      MPI_Waitall(3, nb, MPI_STATUSES_IGNORE);
      h = crcp_hash_u64(sum_out, crcp_hash_u64(bc, h));
    }

    if ((it + 1) % crcp_every(a.iters) == 0 || it + 1 == a.iters) {
      char label[64];
      snprintf(label, sizeof label, "iter %ld cancelled %ld", it + 1, cancelled);
      crcp_report(comm, 0, "persistent_probe", label, h);
    }
  }
  MPI_Request_free(&persist[0]);
  MPI_Request_free(&persist[1]);
  int dsize;
  MPI_Buffer_detach(&bbuf, &dsize);
  free(bbuf);
  MPI_Op_free(&lanes);
  MPI_Type_free(&vec4);
  crcp_finish(comm, 0, "persistent_probe");
  MPI_Finalize();
  return 0;
}
