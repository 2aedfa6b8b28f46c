/* dirty_app: writes an exact, chosen fraction of its pages between checkpoints.
 *
 * Subject of tests/scripts/incremental_fraction.sh (and of the incremental chain tests).
 *
 *   dirty_app [--heap-mb H] [--fractions F1,F2,...] [--seed S] [--thp]
 *             [--outfile PATH] [--gate PREFIX] [--exit-code C]
 *
 * Step 0: maps H MiB (default 256) of private anonymous memory in one mmap (not malloc:
 * no allocator header or top chunk), with MADV_NOHUGEPAGE unless --thp (the question is
 * page granularity; --thp asks for transparent huge pages instead), and writes every
 * byte of it with a deterministic pattern (no page is left untouched or all-zero).
 * Round k = 1..R (R = number of fractions): writes ONE byte in each of exactly
 * n_k = llround(F_k * pages) distinct pages and nothing else in that memory. The pages
 * are the first n_k of a per-round permutation j -> (a * j + b_k) mod pages, a odd and
 * coprime to the page count, so they are scattered over the whole area (few adjacent
 * pages: the worst case for run bookkeeping). The byte is XORed with a non-zero value,
 * so every chosen page really changes (the hash backend sees it too).
 *
 * Output (stdout, one line each, flushed): after step 0 and after every round
 *   "step <k> digest <16 hex> pages <n_k>"
 * where the digest covers every byte of the area and the round number; at the end
 *   "final <16 hex>" (every byte of the area hashed once more)
 * then exit code --exit-code (default 0). Nothing depends on time, pids or addresses.
 * <outfile> gets the same lines with write(2), <outfile>.stdio with a buffered FILE*.
 *
 * Gates (no sleeps in the protocol, no timing dependence): with --gate PREFIX the program
 * waits before round k until the file PREFIX.<k> exists, and before printing the final
 * line until PREFIX.final exists (polling with access(2); the wait writes nothing but its
 * own stack). Without --gate it runs straight through (the uninterrupted reference).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define MAX_ROUNDS 64

static inline uint64_t rotl64(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

static uint64_t hash_words(const uint64_t* w, size_t n, uint64_t seed) {
  uint64_t h0 = seed ^ 0x243f6a8885a308d3ull, h1 = seed ^ 0x13198a2e03707344ull;
  uint64_t h2 = seed ^ 0xa4093822299f31d0ull, h3 = seed ^ 0x082efa98ec4e6c89ull;
  const uint64_t p = 0x9fb21c651e98df25ull;
  const uint64_t* q = w;
  for (size_t blocks = n / 4; blocks; blocks--, q += 4) {
    h0 = rotl64((h0 ^ q[0]) * p, 29);
    h1 = rotl64((h1 ^ q[1]) * p, 29);
    h2 = rotl64((h2 ^ q[2]) * p, 29);
    h3 = rotl64((h3 ^ q[3]) * p, 29);
  }
  for (size_t rest = n % 4; rest; rest--, q++) h0 = rotl64((h0 ^ *q) * p, 29);
  return mix64(mix64(mix64(mix64(n ^ h0) ^ h1) ^ h2) ^ h3);
}

static struct {
  long heap_mb, exit_code;
  uint64_t seed;
  int thp;
  const char *outfile, *gate;
  double fractions[MAX_ROUNDS];
  int rounds;
} opt = {256, 0, 1, 0, NULL, NULL, {0.01, 0.10, 0.50}, 3};

static int out_fd = -1;
static FILE* out_stdio;

static void die(const char* what) {
  fprintf(stderr, "dirty_app: %s: %s\n", what, strerror(errno));
  exit(100);
}

static void usage(void) {
  fprintf(stderr,
          "usage: dirty_app [--heap-mb H] [--fractions F1,F2,...] [--seed S] [--thp]\n"
          "                 [--outfile PATH] [--gate PREFIX] [--exit-code C]\n");
  exit(2);
}

static void wait_gate(const char* suffix) {
  if (!opt.gate) return;
  char path[4096];
  snprintf(path, sizeof path, "%s.%s", opt.gate, suffix);
  struct timespec ts = {0, 2 * 1000 * 1000};
  while (access(path, F_OK) != 0) nanosleep(&ts, NULL);
}

static void emit(const char* line) {
  fputs(line, stdout);
  fflush(stdout);
  if (out_fd >= 0) {
    size_t len = strlen(line);
    if (write(out_fd, line, len) != (ssize_t)len) die("write outfile");
  }
  if (out_stdio) fputs(line, out_stdio); /* flushed at exit only */
}

static uint64_t gcd64(uint64_t a, uint64_t b) {
  while (b) {
    uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

int main(int argc, char** argv) {
  static const struct option longopts[] = {
      {"heap-mb", required_argument, 0, 'm'},   {"fractions", required_argument, 0, 'f'},
      {"seed", required_argument, 0, 'S'},      {"thp", no_argument, 0, 'T'},
      {"outfile", required_argument, 0, 'o'},   {"gate", required_argument, 0, 'g'},
      {"exit-code", required_argument, 0, 'x'}, {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 'm':
        opt.heap_mb = strtol(optarg, NULL, 10);
        break;
      case 'S':
        opt.seed = strtoull(optarg, NULL, 10);
        break;
      case 'T':
        opt.thp = 1;
        break;
      case 'o':
        opt.outfile = optarg;
        break;
      case 'g':
        opt.gate = optarg;
        break;
      case 'x':
        opt.exit_code = strtol(optarg, NULL, 10);
        break;
      case 'f': {
        opt.rounds = 0;
        char *s = optarg, *end;
        while (*s) {
          if (opt.rounds == MAX_ROUNDS) usage();
          double f = strtod(s, &end);
          if (end == s || f < 0 || f > 1) usage();
          opt.fractions[opt.rounds++] = f;
          s = end;
          if (*s == ',')
            s++;
          else if (*s)
            usage();
        }
        break;
      }
      default:
        usage();
    }
  }
  if (opt.heap_mb < 1 || opt.heap_mb > 65536 || opt.rounds < 1) usage();

  /* stdio set up before anything else, so no later allocation happens */
  static char stdout_buf[1 << 12];
  setvbuf(stdout, stdout_buf, _IOFBF, sizeof stdout_buf);
  if (opt.outfile) {
    out_fd = open(opt.outfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0) die(opt.outfile);
    char sp[4096];
    snprintf(sp, sizeof sp, "%s.stdio", opt.outfile);
    out_stdio = fopen(sp, "w");
    if (!out_stdio) die(sp);
  }

  const size_t bytes = (size_t)opt.heap_mb << 20;
  const uint64_t npages = bytes / PAGE;
  unsigned char* mem =
      mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  if (madvise(mem, bytes, opt.thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) != 0) die("madvise");
  uint64_t* w = (uint64_t*)mem;
  for (size_t i = 0; i < bytes / 8; i++)
    w[i] = mix64(i ^ (opt.seed << 40)) | 1; /* never a zero page */

  char line[256];
  uint64_t digest = hash_words(w, bytes / 8, opt.seed);
  snprintf(line, sizeof line, "step 0 digest %016" PRIx64 " pages %" PRIu64 "\n", digest, npages);
  emit(line);

  uint64_t a = (0x9e3779b97f4a7c15ull % npages) | 1;
  while (gcd64(a, npages) != 1) a += 2;
  for (int k = 1; k <= opt.rounds; k++) {
    char gate[32];
    snprintf(gate, sizeof gate, "%d", k);
    wait_gate(gate);
    const uint64_t n = (uint64_t)llround(opt.fractions[k - 1] * (double)npages);
    const uint64_t b = mix64(opt.seed * 1000003u + (uint64_t)k) % npages;
    for (uint64_t j = 0; j < n; j++) {
      const uint64_t page = (a * j + b) % npages; /* a bijection on [0, npages) */
      const uint64_t r = mix64(page * 0x100000001b3ull + (uint64_t)k);
      mem[page * PAGE + (r % PAGE)] ^= (unsigned char)(1 + (r >> 32) % 255); /* != 0: a change */
    }
    digest = hash_words(w, bytes / 8, digest ^ (uint64_t)k);
    snprintf(line, sizeof line, "step %d digest %016" PRIx64 " pages %" PRIu64 "\n", k, digest, n);
    emit(line);
  }
  wait_gate("final");
  /* computed again from memory: a restored process proves here what it got back */
  snprintf(line, sizeof line, "final %016" PRIx64 "\n", hash_words(w, bytes / 8, digest ^ 0xf1a1));
  emit(line);
  if (out_stdio && fclose(out_stdio) != 0) die("fclose");
  if (out_fd >= 0) close(out_fd);
  return (int)opt.exit_code;
}
