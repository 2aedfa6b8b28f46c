/* stateful_app: the end-to-end tests' checkpoint/restart subject.
 *
 * A deterministic program that keeps real state in every place a process keeps state
 * and prints a running digest of all of it, so that any state lost or corrupted by a
 * checkpoint/restart changes its output:
 *
 *   - heap: --heap-mb MiB in two halves, 1 MiB chunks (glibc serves them with mmap) and
 *     32 KiB chunks (served from the brk heap); a binary search tree of variable-size
 *     nodes and a linked list whose shapes change every step (many small malloc/free);
 *     a buffer that grows with realloc (and so moves) and is reset now and then;
 *   - .bss: a 32 MiB array (a rotating stripe written per step, a part only ever read,
 *     so it maps the zero page, and a part never touched); .data: an initialised
 *     table and a text that strtok() cuts in place;
 *   - stack: a recursion --depth frames deep (default 20000) whose frames hold state
 *     that is checked on the way back up; the step's computation runs at the bottom,
 *     so a checkpoint usually finds the stack that deep;
 *   - libc state: rand()/srand(), lrand48(), strtok()'s saved position, qsort(), the
 *     FILE* buffer of the output file, stdout's FILE*;
 *   - files: <outfile> written with write(2) and read back with read(2) through a
 *     second descriptor (two offsets), <outfile>.stdio written with fprintf through a
 *     FILE* that is not flushed per step (buffered data exists at checkpoints);
 *   - floating point: loops the compiler vectorises (SSE2 / AVX2 / AVX-512 clones, the
 *     same results on every path: element-wise operations only, no FMA), double and
 *     long double (x87) accumulators live across steps;
 *   - optional --threads N worker threads, each with its own memory and work.
 *
 * Output: one line "step <i> digest <16 hex>" per step on stdout (flushed per line),
 * then "final <16 hex>", exit code --exit-code (default 0). Nothing printed depends
 * on time, pids or addresses. --step-ms K sets a fixed amount of work per step that
 * takes about K ms on the development machine (work, not time: the output does not
 * depend on how long it takes). --gate PATH makes the program wait, before its last
 * step, until PATH exists (polling; no state changes), so that a test can checkpoint
 * without racing the end of the program.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- hashing ---- */

static inline uint64_t rotl64(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

static inline uint64_t mix64(uint64_t x) { /* splitmix64 finaliser */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

static inline uint64_t fold(uint64_t h, uint64_t v) {
  return mix64(h ^ (v + 0x9e3779b97f4a7c15ull + rotl64(h, 17)));
}

/* Four independent lanes so that hashing hundreds of MiB stays fast. */
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
  return fold(fold(fold(fold(n, h0), h1), h2), h3);
}

static uint64_t hash_bytes(const void* p, size_t n, uint64_t seed) {
  const unsigned char* b = p;
  uint64_t h = seed ^ 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return mix64(h ^ n);
}

static uint64_t double_bits(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

static uint64_t long_double_bits(long double d) { /* the 10 significant bytes only */
  unsigned char b[sizeof(long double)];
  memcpy(b, &d, sizeof b);
  return hash_bytes(b, 10, 0x1d);
}

static void die(const char* what) {
  fprintf(stderr, "stateful_app: %s: %s\n", what, strerror(errno));
  exit(100);
}

/* ------------------------------------------------------ static state ---- */

#define BSS_WORDS (32u * 1024 * 1024 / 8)         /* 32 MiB */
#define BSS_WRITTEN_WORDS (24u * 1024 * 1024 / 8) /* [0, 24 MiB): written in stripes */
#define BSS_READ_WORDS (4u * 1024 * 1024 / 8)     /* [24, 28 MiB): only read (zero page) */
#define BSS_STRIPES 16u                           /* [28, 32 MiB): never touched */
static uint64_t bss_big[BSS_WORDS];

#define V1(i) (0x9e3779b97f4a7c15ull * (uint64_t)(i) + 0x0123456789abcdefull)
#define V4(i) V1(i), V1((i) + 1), V1((i) + 2), V1((i) + 3)
#define V16(i) V4(i), V4((i) + 4), V4((i) + 8), V4((i) + 12)
#define V64(i) V16(i), V16((i) + 16), V16((i) + 32), V16((i) + 48)
#define V256(i) V64(i), V64((i) + 64), V64((i) + 128), V64((i) + 192)
#define DATA_WORDS 1024
static uint64_t data_table[DATA_WORDS] = {V256(0), V256(256), V256(512), V256(768)};

#define TEXT_INIT                                                                       \
  "Checkpoint, restart; and continue: a process image holds memory registers files "    \
  "signals and threads. The restorer validates every record, maps every region, "       \
  "overlays saved pages and re-enters each thread; nothing may be lost, nothing "       \
  "duplicated. alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu "  \
  "xi omicron pi rho sigma tau upsilon phi chi psi omega; one two three four five six " \
  "seven eight nine ten eleven twelve, thirteen fourteen fifteen sixteen seventeen."
static char text_data[] = TEXT_INIT;       /* .data, cut in place by strtok */
static const char text_orig[] = TEXT_INIT; /* .rodata, to start over */
static const char* const text_delims = " ,;:.";
static int text_started;

/* ------------------------------------------------------------- options ---- */

static struct {
  long steps, heap_mb, step_ms, depth, threads, exit_code;
  const char *outfile, *gate;
  uint64_t seed;
} opt = {40, 256, 50, 20000, 0, 0, NULL, NULL, 1};

/* Fixed work per --step-ms millisecond; measured on the development machine (2 cores,
 * x86_64): only the running time depends on it, never the output. */
#define WORK_REPS_PER_MS 560

/* -------------------------------------------------- vectorised work ---- */

#define VEC_N 2048
struct work_area {
  double a[VEC_N], b[VEC_N], c[VEC_N];
  uint64_t u[VEC_N];
  int32_t k[VEC_N];
};

/* Element-wise only (no reductions, no FMA): every clone computes identical bits. */
__attribute__((target_clones("avx512f", "avx2", "default"), noinline)) static void work_kernel(
    struct work_area* w, long reps) {
  for (long r = 0; r < reps; r++) {
    for (int j = 0; j < VEC_N; j++) {
      uint64_t x = w->u[j];
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      w->u[j] = x;
    }
    for (int j = 0; j < VEC_N; j++) w->k[j] = (int32_t)(w->u[j] >> 40) - (1 << 23);
    for (int j = 0; j < VEC_N; j++) {
      double kj = (double)w->k[j] * (1.0 / 8388608.0);
      w->a[j] = w->a[j] * 0.9375 + w->b[j] * 0.0625 + kj * 0.001;
      w->b[j] = w->b[j] * 0.875 + (w->a[j] - w->c[j]) * 0.125;
      w->c[j] = w->c[j] * 0.5 + kj * 0.25 + w->a[j] * 0.25;
    }
  }
}

static void work_init(struct work_area* w, uint64_t seed) {
  for (int j = 0; j < VEC_N; j++) {
    w->u[j] = mix64(seed + (uint64_t)j) | 1;
    w->a[j] = (double)(j % 97) * 0.01;
    w->b[j] = (double)(j % 89) * -0.02;
    w->c[j] = 1.0 / (double)(j + 1);
    w->k[j] = 0;
  }
}

static uint64_t work_hash(const struct work_area* w, uint64_t seed) {
  uint64_t h = hash_words(w->u, VEC_N, seed);
  h = fold(h, hash_bytes(w->a, sizeof w->a, 1));
  h = fold(h, hash_bytes(w->b, sizeof w->b, 2));
  h = fold(h, hash_bytes(w->c, sizeof w->c, 3));
  return fold(h, hash_bytes(w->k, sizeof w->k, 4));
}

/* ------------------------------------------------------- recursion ---- */

struct rec_ctx {
  struct work_area* w;
  long reps;
  uint64_t errors;
};

static inline uint64_t frame_value(uint64_t seed, long depth, int i) {
  return mix64(seed * 31 + (uint64_t)depth * 7919 + (uint64_t)i);
}

/* Each frame keeps four words and a double in memory (volatile), computes the work at
 * the bottom, and on the way up checks its words and folds them into the result. */
__attribute__((noinline)) static uint64_t recurse(long depth, uint64_t seed, struct rec_ctx* c) {
  volatile uint64_t local[4];
  volatile double dl = (double)depth * 0.5 + 0.25;
  for (int i = 0; i < 4; i++) local[i] = frame_value(seed, depth, i);
  uint64_t r;
  if (depth <= 0) {
    work_kernel(c->w, c->reps);
    r = work_hash(c->w, seed);
  } else {
    r = recurse(depth - 1, local[1], c);
  }
  for (int i = 0; i < 4; i++)
    if (local[i] != frame_value(seed, depth, i)) c->errors++;
  if (dl != (double)depth * 0.5 + 0.25) c->errors++;
  return fold(r, local[2] ^ (uint64_t)depth) + (uint64_t)(dl * 2.0);
}

/* --------------------------------------------------------------- heap ---- */

#define BIG_CHUNK (1u << 20)    /* mmap'ed by glibc */
#define SMALL_CHUNK (32u << 10) /* from the brk heap */
#define HEAP_STRIPES 16u

struct chunk {
  uint64_t* w;
  size_t words;
};
static struct chunk* chunks;
static size_t nchunks;

static void heap_init(void) {
  size_t total = (size_t)opt.heap_mb << 20;
  size_t big = total / 2 / BIG_CHUNK, small = (total - big * BIG_CHUNK) / SMALL_CHUNK;
  nchunks = big + small;
  chunks = calloc(nchunks ? nchunks : 1, sizeof *chunks);
  if (!chunks) die("calloc");
  size_t nbig = 0, nsmall = 0;
  for (size_t i = 0; i < nchunks; i++) {
    /* interleave the two sizes so both kinds sit in every stripe */
    int take_big = nbig < big && (nsmall >= small || i % 2 == 0);
    size_t bytes = take_big ? BIG_CHUNK : SMALL_CHUNK;
    if (take_big)
      nbig++;
    else
      nsmall++;
    chunks[i].w = malloc(bytes);
    if (!chunks[i].w) die("malloc");
    chunks[i].words = bytes / 8;
    uint64_t s = mix64(opt.seed * 1000003 + i);
    for (size_t k = 0; k < chunks[i].words; k++) chunks[i].w[k] = s + k * 0x9e3779b97f4a7c15ull;
  }
}

/* Hash the stripe as it was left (detects any change since it was last written), then
 * rewrite it from its old content. */
static uint64_t heap_step(long step, uint64_t salt) {
  uint64_t h = 0;
  unsigned stripe = (unsigned)(step % HEAP_STRIPES);
  for (size_t i = stripe; i < nchunks; i += HEAP_STRIPES) {
    uint64_t* w = chunks[i].w;
    size_t n = chunks[i].words;
    h = fold(h, hash_words(w, n, i));
    uint64_t m = salt | 1;
    for (size_t k = 0; k < n; k++) w[k] = (w[k] ^ (k + m)) * 0xd6e8feb86659fd93ull + m;
  }
  /* and verify one page of another stripe */
  if (nchunks) {
    size_t i = (size_t)(salt % nchunks);
    h = fold(h, hash_words(chunks[i].w, 512, 0x77));
  }
  return h;
}

static uint64_t heap_hash_all(void) {
  uint64_t h = nchunks;
  for (size_t i = 0; i < nchunks; i++) h = fold(h, hash_words(chunks[i].w, chunks[i].words, i));
  return h;
}

/* A binary search tree of variable-size nodes; inserts and deletes change its shape. */
struct node {
  struct node *l, *r;
  uint32_t key;
  uint32_t len;
  unsigned char payload[];
};
static struct node* tree_root;
static long tree_count;

static struct node* node_new(uint32_t key, long step) {
  uint32_t len = 8 + (key % 600);
  struct node* n = malloc(sizeof *n + len);
  if (!n) die("malloc");
  n->l = n->r = NULL;
  n->key = key;
  n->len = len;
  for (uint32_t i = 0; i < len; i++)
    n->payload[i] = (unsigned char)(key * 131 + i * 7 + (uint32_t)step);
  return n;
}

static void tree_insert(uint32_t key, long step) {
  struct node** p = &tree_root;
  while (*p) {
    if (key == (*p)->key) return;
    p = key < (*p)->key ? &(*p)->l : &(*p)->r;
  }
  *p = node_new(key, step);
  tree_count++;
}

/* delete the smallest key >= key (if any) */
static void tree_delete_ceil(uint32_t key) {
  struct node **p = &tree_root, **best = NULL;
  while (*p) {
    if ((*p)->key >= key) {
      best = p;
      if ((*p)->key == key) break;
      p = &(*p)->l;
    } else {
      p = &(*p)->r;
    }
  }
  if (!best) return;
  struct node* n = *best;
  if (!n->l) {
    *best = n->r;
  } else if (!n->r) {
    *best = n->l;
  } else { /* replace by the minimum of the right subtree */
    struct node** m = &n->r;
    while ((*m)->l) m = &(*m)->l;
    struct node* succ = *m;
    *m = succ->r;
    succ->l = n->l;
    succ->r = n->r;
    *best = succ;
  }
  free(n);
  tree_count--;
}

static uint64_t tree_hash(const struct node* n, uint64_t h, long depth) {
  while (n) { /* in order: left recursively, self, then loop on the right */
    h = tree_hash(n->l, h, depth + 1);
    h = fold(h, ((uint64_t)n->key << 20) ^ (uint64_t)depth);
    h = fold(h, hash_bytes(n->payload, n->len, n->key));
    n = n->r;
    depth++;
  }
  return h;
}

static void tree_free(struct node* n) {
  while (n) {
    tree_free(n->l);
    struct node* r = n->r;
    free(n);
    n = r;
  }
}

struct item {
  struct item* next;
  uint64_t v;
  char text[40];
};
static struct item* list_head;
static long list_len;

static uint64_t list_step(long step) {
  for (int i = 0; i < 24; i++) { /* push */
    struct item* it = malloc(sizeof *it);
    if (!it) die("malloc");
    it->v = mix64((uint64_t)step * 64 + (uint64_t)i);
    snprintf(it->text, sizeof it->text, "item-%ld-%d-%08" PRIx64, step, i, it->v & 0xffffffffu);
    it->next = list_head;
    list_head = it;
    list_len++;
  }
  for (int i = 0; i < 20 && list_len > 0; i++) { /* remove at rand() positions */
    long pos = rand() % list_len;
    struct item** p = &list_head;
    while (pos--) p = &(*p)->next;
    struct item* dead = *p;
    *p = dead->next;
    free(dead);
    list_len--;
  }
  if (step % 3 == 0) { /* reverse */
    struct item *prev = NULL, *cur = list_head;
    while (cur) {
      struct item* nx = cur->next;
      cur->next = prev;
      prev = cur;
      cur = nx;
    }
    list_head = prev;
  }
  uint64_t h = (uint64_t)list_len;
  for (struct item* it = list_head; it; it = it->next)
    h = fold(h, it->v ^ hash_bytes(it->text, strlen(it->text), 9));
  return h;
}

static uint64_t* grow_buf;
static size_t grow_words;

static uint64_t grow_step(long step) {
  if (grow_words >= (8u << 20) / 8) { /* reset at 8 MiB */
    free(grow_buf);
    grow_buf = NULL;
    grow_words = 0;
  }
  size_t add = (size_t)(96 + (step % 7) * 40) * 1024 / 8;
  uint64_t* nb = realloc(grow_buf, (grow_words + add) * 8);
  if (!nb) die("realloc");
  grow_buf = nb;
  for (size_t k = 0; k < add; k++) grow_buf[grow_words + k] = mix64((uint64_t)step ^ (k << 8));
  grow_words += add;
  return hash_words(grow_buf, grow_words, 0x55);
}

/* ------------------------------------------------------- libc state ---- */

static int cmp_int(const void* a, const void* b) {
  int x = *(const int*)a, y = *(const int*)b;
  return (x > y) - (x < y);
}

static uint64_t libc_step(void) {
  uint64_t h = 0;
  /* strtok: continue cutting the .data text where the previous step stopped */
  for (int i = 0; i < 5; i++) {
    char* tok = strtok(text_started ? NULL : text_data, text_delims);
    text_started = 1;
    if (!tok) {
      memcpy(text_data, text_orig, sizeof text_data);
      tok = strtok(text_data, text_delims);
    }
    h = fold(h, hash_bytes(tok, strlen(tok), (uint64_t)i));
  }
  h = fold(h, hash_bytes(text_data, sizeof text_data, 3));
  /* qsort of rand() numbers */
  enum { N = 3000 };
  int* v = malloc(N * sizeof *v);
  if (!v) die("malloc");
  for (int i = 0; i < N; i++) v[i] = rand() % 100000;
  qsort(v, N, sizeof *v, cmp_int);
  h = fold(h, hash_bytes(v, N * sizeof *v, 4));
  free(v);
  return fold(h, (uint64_t)lrand48());
}

/* ------------------------------------------------------ static data ---- */

static uint64_t static_step(long step) {
  uint64_t h = 0;
  size_t stripe_words = BSS_WRITTEN_WORDS / BSS_STRIPES;
  size_t s = (size_t)(step % BSS_STRIPES) * stripe_words;
  h = fold(h, hash_words(bss_big + s, stripe_words, 11)); /* as left by its last write */
  for (size_t k = 0; k < stripe_words; k++)
    bss_big[s + k] = bss_big[s + k] * 3 + (k ^ (uint64_t)step);
  /* read, never write: these pages stay on the shared zero page */
  size_t r = BSS_WRITTEN_WORDS + (size_t)(step % 8) * (BSS_READ_WORDS / 8);
  h = fold(h, hash_words(bss_big + r, BSS_READ_WORDS / 8, 12));
  for (int i = 0; i < DATA_WORDS; i++)
    data_table[i] = mix64(data_table[i] ^ (uint64_t)step) + data_table[(i + 1) % DATA_WORDS];
  return fold(h, hash_words(data_table, DATA_WORDS, 13));
}

/* ----------------------------------------------------------- threads ---- */

struct worker {
  pthread_t th;
  int index;
  struct work_area* w;
  uint64_t* mem;
  size_t mem_words;
  uint64_t result;
  uint64_t errors;
};
static struct worker* workers;
static pthread_barrier_t bar_start, bar_done;
static volatile long worker_step; /* written by main before bar_start */

static void* worker_main(void* arg) {
  struct worker* me = arg;
  for (;;) {
    pthread_barrier_wait(&bar_start);
    long step = worker_step;
    if (step < 0) break;
    uint64_t h = hash_words(me->mem, me->mem_words, (uint64_t)me->index); /* as left */
    for (size_t k = 0; k < me->mem_words; k++) me->mem[k] = mix64(me->mem[k] + (uint64_t)step);
    struct rec_ctx c = {me->w, opt.step_ms * WORK_REPS_PER_MS / 2, 0};
    h = fold(h, recurse(opt.depth / 10, mix64((uint64_t)step * 97 + (uint64_t)me->index), &c));
    me->errors += c.errors;
    me->result = h;
    pthread_barrier_wait(&bar_done);
  }
  return NULL;
}

static void threads_start(void) {
  if (opt.threads <= 0) return;
  workers = calloc((size_t)opt.threads, sizeof *workers);
  if (!workers) die("calloc");
  if (pthread_barrier_init(&bar_start, NULL, (unsigned)opt.threads + 1) ||
      pthread_barrier_init(&bar_done, NULL, (unsigned)opt.threads + 1))
    die("pthread_barrier_init");
  for (long t = 0; t < opt.threads; t++) {
    struct worker* wk = &workers[t];
    wk->index = (int)t;
    wk->w = malloc(sizeof *wk->w);
    wk->mem_words = (4u << 20) / 8;
    wk->mem = malloc(wk->mem_words * 8);
    if (!wk->w || !wk->mem) die("malloc");
    work_init(wk->w, 1000 + (uint64_t)t);
    for (size_t k = 0; k < wk->mem_words; k++) wk->mem[k] = mix64(k * 13 + (uint64_t)t);
    errno = pthread_create(&wk->th, NULL, worker_main, wk);
    if (errno) die("pthread_create");
  }
}

static uint64_t threads_step(long step, struct rec_ctx* main_ctx, uint64_t main_seed,
                             uint64_t* main_result) {
  if (opt.threads <= 0) {
    *main_result = recurse(opt.depth, main_seed, main_ctx);
    return 0;
  }
  worker_step = step;
  pthread_barrier_wait(&bar_start);
  *main_result = recurse(opt.depth, main_seed, main_ctx); /* concurrently with the workers */
  pthread_barrier_wait(&bar_done);
  uint64_t h = 0;
  for (long t = 0; t < opt.threads; t++) h = fold(h, workers[t].result);
  return h;
}

static void threads_stop(void) {
  if (opt.threads <= 0) return;
  worker_step = -1;
  pthread_barrier_wait(&bar_start);
  for (long t = 0; t < opt.threads; t++) pthread_join(workers[t].th, NULL);
}

/* ------------------------------------------------------------ output ---- */

static void write_all(int fd, const void* buf, size_t n) {
  const char* p = buf;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write outfile");
    }
    p += w;
    n -= (size_t)w;
  }
}

static void wait_gate(void) {
  if (!opt.gate) return;
  struct timespec ts = {0, 2 * 1000 * 1000};
  while (access(opt.gate, F_OK) != 0) nanosleep(&ts, NULL);
}

static void usage(FILE* f) {
  fprintf(f,
          "usage: stateful_app --outfile PATH [--steps N] [--heap-mb M] [--step-ms K]\n"
          "                    [--depth D] [--threads T] [--seed S] [--exit-code C] [--gate PATH]\n"
          "Prints \"step <i> digest <hex>\" per step and \"final <hex>\"; writes PATH and "
          "PATH.stdio.\n");
}

static long parse_long(const char* name, const char* s, long lo, long hi) {
  char* end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || end == s || v < lo || v > hi) {
    fprintf(stderr, "stateful_app: bad value for --%s: '%s' (expected %ld..%ld)\n", name, s, lo,
            hi);
    exit(2);
  }
  return v;
}

int main(int argc, char** argv) {
  static const struct option longopts[] = {{"steps", required_argument, 0, 's'},
                                           {"heap-mb", required_argument, 0, 'm'},
                                           {"step-ms", required_argument, 0, 'k'},
                                           {"outfile", required_argument, 0, 'o'},
                                           {"depth", required_argument, 0, 'd'},
                                           {"threads", required_argument, 0, 't'},
                                           {"seed", required_argument, 0, 'S'},
                                           {"exit-code", required_argument, 0, 'x'},
                                           {"gate", required_argument, 0, 'g'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 's':
        opt.steps = parse_long("steps", optarg, 1, 1000000);
        break;
      case 'm':
        opt.heap_mb = parse_long("heap-mb", optarg, 0, 1 << 20);
        break;
      case 'k':
        opt.step_ms = parse_long("step-ms", optarg, 0, 1000000);
        break;
      case 'o':
        opt.outfile = optarg;
        break;
      case 'd':
        opt.depth = parse_long("depth", optarg, 0, 200000);
        break;
      case 't':
        opt.threads = parse_long("threads", optarg, 0, 64);
        break;
      case 'S':
        opt.seed = (uint64_t)parse_long("seed", optarg, 0, 1L << 40);
        break;
      case 'x':
        opt.exit_code = parse_long("exit-code", optarg, 0, 255);
        break;
      case 'g':
        opt.gate = optarg;
        break;
      case 'h':
        usage(stdout);
        return 0;
      default:
        usage(stderr);
        return 2;
    }
  }
  if (optind != argc || !opt.outfile) {
    usage(stderr);
    return 2;
  }

  /* files: one written by write(2) and read back through a second descriptor, one by stdio */
  int fd = open(opt.outfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die(opt.outfile);
  int rfd = open(opt.outfile, O_RDONLY | O_CLOEXEC);
  if (rfd < 0) die(opt.outfile);
  size_t plen = strlen(opt.outfile);
  char* stdio_path = malloc(plen + 7);
  if (!stdio_path) die("malloc");
  memcpy(stdio_path, opt.outfile, plen);
  memcpy(stdio_path + plen, ".stdio", 7);
  FILE* fp = fopen(stdio_path, "we");
  if (!fp) die(stdio_path);

  srand((unsigned)opt.seed);
  srand48((long)opt.seed * 7 + 1);
  heap_init();
  for (uint32_t i = 0; i < 2000; i++) tree_insert((uint32_t)rand(), 0);
  struct work_area* w = malloc(sizeof *w);
  if (!w) die("malloc");
  work_init(w, opt.seed);
  threads_start();

  double acc_sum = 0.0, acc_prod = 1.0, acc_osc = 0.5;
  long double acc_ld = 1.0L;
  uint64_t digest = mix64(opt.seed);
  uint64_t stack_errors = 0;
  struct rec_ctx rc = {w, opt.step_ms * WORK_REPS_PER_MS, 0};

  for (long step = 1; step <= opt.steps; step++) {
    if (step == opt.steps) wait_gate();
    uint64_t salt = mix64(digest ^ (uint64_t)step);
    uint64_t h = fold(digest, (uint64_t)step);

    /* small objects: tree and list */
    for (int i = 0; i < 64; i++) tree_insert((uint32_t)rand(), step);
    for (int i = 0; i < 60; i++) tree_delete_ceil((uint32_t)rand());
    h = fold(h, tree_hash(tree_root, (uint64_t)tree_count, 0));
    h = fold(h, list_step(step));
    h = fold(h, grow_step(step));

    /* large heap, static data, libc */
    h = fold(h, heap_step(step, salt));
    h = fold(h, static_step(step));
    h = fold(h, libc_step());

    /* deep recursion with the step's computation at the bottom (and the threads') */
    uint64_t rec = 0;
    h = fold(h, threads_step(step, &rc, salt, &rec));
    h = fold(h, rec);

    /* floating point accumulators, live across steps */
    for (int j = 0; j < VEC_N; j += 64) {
      acc_sum += w->a[j] * 0.5 + w->b[j];
      acc_prod *= 1.0 + w->c[j] * 1e-3;
      acc_osc = acc_osc * -0.999 + w->a[j];
      acc_ld = acc_ld * 1.0000001L + (long double)w->b[j];
    }
    if (acc_prod > 1e100 || acc_prod < 1e-100) acc_prod = 1.0;
    h = fold(h, double_bits(acc_sum));
    h = fold(h, double_bits(acc_prod));
    h = fold(h, double_bits(acc_osc));
    h = fold(h, long_double_bits(acc_ld));

    /* read back through the second descriptor what write(2) wrote earlier */
    unsigned char rb[32]; /* less than one line per step: never past what this process wrote */
    ssize_t got = read(rfd, rb, sizeof rb);
    if (got < 0) die("read outfile");
    h = fold(h, hash_bytes(rb, (size_t)got, (uint64_t)got));

    stack_errors += rc.errors;
    rc.errors = 0;
    for (long t = 0; t < opt.threads; t++) stack_errors += workers[t].errors;
    h = fold(h, stack_errors);
    digest = h;

    /* outputs */
    char line[256];
    int n =
        snprintf(line, sizeof line, "step %ld digest %016" PRIx64 " tree %ld list %ld sum %.17g\n",
                 step, digest, tree_count, list_len, acc_sum);
    write_all(fd, line, (size_t)n);
    fprintf(fp, "step %ld\n", step);
    for (int j = 0; j < 24; j++)
      fprintf(fp, "  v[%02d] a=%.17g b=%.17g u=%016" PRIx64 "\n", j, w->a[j * 80], w->b[j * 80],
              w->u[j * 80]);
    printf("step %ld digest %016" PRIx64 "\n", step, digest);
    fflush(stdout);
  }

  threads_stop();
  uint64_t fin = fold(digest, heap_hash_all());
  fin = fold(fin, hash_words(bss_big, BSS_WORDS, 21));
  fin = fold(fin, hash_words(data_table, DATA_WORDS, 22));
  fin = fold(fin, work_hash(w, 23));
  for (long t = 0; t < opt.threads; t++)
    fin = fold(fin, hash_words(workers[t].mem, workers[t].mem_words, 24));
  fin = fold(fin, tree_hash(tree_root, 25, 0));
  fin = fold(fin, stack_errors);
  if (stack_errors)
    fprintf(stderr, "stateful_app: %" PRIu64 " stack frames held unexpected values\n",
            stack_errors);
  printf("final %016" PRIx64 "\n", fin);
  fflush(stdout);

  char line[64];
  int n = snprintf(line, sizeof line, "final %016" PRIx64 "\n", fin);
  write_all(fd, line, (size_t)n);
  fprintf(fp, "final %016" PRIx64 "\n", fin);
  if (fclose(fp) != 0) die(stdio_path);
  if (close(fd) != 0 || close(rfd) != 0) die("close outfile");

  tree_free(tree_root);
  while (list_head) {
    struct item* nx = list_head->next;
    free(list_head);
    list_head = nx;
  }
  free(grow_buf);
  for (size_t i = 0; i < nchunks; i++) free(chunks[i].w);
  free(chunks);
  free(w);
  free(stdio_path);
  return (int)opt.exit_code;
}
