/* eager_flood: every rank but 1 floods rank 1 with small (eager) messages, alternating
 * MPI_Send and MPI_Isend, far ahead of the receiver, which computes between receives:
 * at any moment many messages are in flight, so a checkpoint has to drain them. Rank 1
 * receives from the senders in a fixed interleaving and prints everything (one printer,
 * so the output order is fixed). Usage: eager_flood [ROUNDS [WORK]] (2 ranks or more);
 * 1000 messages per sender and round. */
#include "common.h"

#define PER_ROUND 1000
#define WORDS 8 /* 64-byte messages */
#define TAG_DONE 1000

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  crcp_args a = crcp_parse(argc, argv, 16, 2);
  if (size < 2) {
    fprintf(stderr, "eager_flood: needs 2 ranks or more\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const int receiver = 1;
  crcp_print(rank, receiver, "eager_flood: %d senders, %ld rounds of %d messages each\n", size - 1,
             a.iters, PER_ROUND);
  if (rank != receiver) {
    int64_t* buf = malloc(sizeof(int64_t) * WORDS * PER_ROUND);
    MPI_Request* req = malloc(sizeof(MPI_Request) * PER_ROUND);
    for (long round = 0; round < a.iters; round++) {
      int nreq = 0;
      for (int k = 0; k < PER_ROUND; k++) {
        int64_t* m = buf + (size_t)k * WORDS;
        for (int w = 0; w < WORDS; w++) m[w] = ((int64_t)rank << 40) + round * 100000 + k * 10 + w;
        if (k % 2 == 0)
          MPI_Send(m, WORDS, MPI_INT64_T, receiver, (int)(round % 100), MPI_COMM_WORLD);
        else
          MPI_Isend(m, WORDS, MPI_INT64_T, receiver, (int)(round % 100), MPI_COMM_WORLD,
                    &req[nreq++]);
      }
      MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
    }
    /* wait (point-to-point, not in a collective) until the receiver has everything, so
     * that a checkpoint meanwhile finds the messages still in flight */
    int all_in;
    MPI_Recv(&all_in, 1, MPI_INT, receiver, TAG_DONE, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    free(buf);
    free(req);
  } else {
    uint64_t h = CRCP_HASH0;
    int64_t m[WORDS];
    for (long round = 0; round < a.iters; round++) {
      for (int k = 0; k < PER_ROUND; k++) {
        for (int s = 0; s < size; s++) {
          if (s == receiver) continue;
          MPI_Status st;
          MPI_Recv(m, WORDS, MPI_INT64_T, s, (int)(round % 100), MPI_COMM_WORLD, &st);
          if (m[0] != ((int64_t)s << 40) + round * 100000 + k * 10) {
            fprintf(stderr, "eager_flood: message %d of round %ld from %d out of order\n", k, round,
                    s);
            MPI_Abort(MPI_COMM_WORLD, 3);
          }
          h = crcp_hash(m, sizeof m, h);
        }
        crcp_work(a.work, (uint64_t)k); /* the receiver is slower than the senders */
        if (k % 250 == 249) crcp_sleep_ms(1);
      }
      printf("eager_flood: round %ld received %ld messages, hash %016llx\n", round + 1,
             (round + 1) * PER_ROUND * (long)(size - 1), (unsigned long long)h);
      fflush(stdout);
    }
    for (int s = 0; s < size; s++) {
      int all_in = 1;
      if (s != receiver) MPI_Send(&all_in, 1, MPI_INT, s, TAG_DONE, MPI_COMM_WORLD);
    }
  }
  crcp_finish(MPI_COMM_WORLD, receiver, "eager_flood");
  MPI_Finalize();
  return 0;
}
