/* layout_app: changes its address-space layout between checkpoints.
 *
 * Subject of tests/scripts/incremental_layout.sh: an incremental image must handle every
 * region that was created, grown, moved, shrunk, split, replaced or unmapped since its
 * parent, and pages that were dropped (MADV_DONTNEED) must come back as zero (anonymous)
 * or as the file's bytes (private file mapping), never as the parent's bytes.
 *
 *   layout_app [--outfile PATH] [--gate PREFIX] [--seed S] [--exit-code C]
 *
 * Everything lives at fixed offsets of one 64 MiB PROT_NONE reservation (so the regions
 * are separate VMAs with PROT_NONE gaps between them, and moves have fixed targets),
 * plus one region the kernel places (N2) and the brk heap (sbrk, above glibc's own
 * heap; the program allocates nothing with malloc after start-up: stdio buffers are
 * static). A private file mapping uses <outfile>.map (1 MiB, created at start, never
 * written through a descriptor again). Offsets in MiB inside the reservation:
 *
 *   A [0,4)  B [5,9)  C [10,12)  D [13,15)  E [16,17)  G [18,22) (+ free [22,24))
 *   P [25,27) Q [27,29) (adjacent: one VMA)  X [30,31)  Y [32,33)  F [34,35) (file)
 *   S [36,37) (MAP_SHARED anonymous: a few pages written every round)  H [38,39)
 *   N [45,48) (round 1)  C' [50,53) (round 2: C moved here and grown)
 *
 * step 0  map and fill A..Y, F (every 4th page copied on write), brk +2 MiB filled
 * round 1 mmap N (fixed) and N2 (kernel placed), fill; munmap B; brk +1 MiB filled;
 *         write every 16th page of A; one byte in every page of P
 * round 2 mremap C -> C' (move and grow 2 -> 3 MiB, new MiB filled); grow G in place
 *         4 -> 6 MiB (mremap without MAYMOVE into the free gap), fill; brk -1.5 MiB;
 *         MADV_DONTNEED the even pages of E (they must read as zero from now on)
 *         ... and reports step 2 and waits for gate 3 at the bottom of a 2 MiB deep
 *         recursion whose frames are checked on the way back (the stack grew)
 * round 3 replace D by a new anonymous mmap at the same address (MAP_FIXED), write only
 *         its first half (the second half must read as zero); replace Q likewise (Q was
 *         merged with P into one VMA) and write all of it; punch a 1 MiB hole into A
 *         (munmap [1,2)); mprotect N's middle MiB read-only (a split);
 *         MADV_DONTNEED half of F's private copies (they must read the file's bytes
 *         again); write the odd pages of E; write every 5th page of H, then make all of
 *         H PROT_NONE (its data is saved through /proc/self/mem; not hashed while so)
 * round 4 mremap X onto Y (Y now holds X's bytes, X is gone); brk +512 KiB (the pages
 *         there were written before the shrink of round 2: they must read as zero; only
 *         the first half is written now); map F anew at the same address (MAP_FIXED:
 *         every private copy gone), write 2 of its pages; N read-write again, written;
 *         rewrite every 4th even page of E; H read-write again (its bytes are checked
 *         again from now on), one page written
 * round 5 brk +256 KiB filled; mmap N3 (kernel placed), fill; munmap Y; one byte in one
 *         page of every region (no other layout change)
 *
 * Output per step: "step <k> digest <16 hex> checks <ok | what failed>", then one line
 * per live region "  region <name> len <bytes> hash <16 hex>" (hashed before the step
 * line: they say which region differs when a digest does), at the end "final <16 hex>"
 * (every live region hashed again); exit code --exit-code. The checks re-verify, every
 * step, the pages that must read as zero or as the file's bytes. Pages a round drops are
 * not read in that round's own step (see page_unread): at the checkpoint that follows
 * they are really gone (not the zero page), which is the case the tracker must get
 * right. Nothing depends on addresses or time.
 * <outfile> gets the step lines with write(2), <outfile>.stdio with a buffered FILE*.
 * Gates: with --gate PREFIX, round k waits until PREFIX.<k> exists and the final line
 * until PREFIX.final exists.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096ul
#define MiB (1ul << 20)
#define KiB (1ul << 10)
#define RESERVE (64 * MiB)
#define ROUNDS 5

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
  const uint64_t p = 0x9fb21c651e98df25ull;
  size_t i = 0;
  for (; i + 1 < n; i += 2) {
    h0 = rotl64((h0 ^ w[i]) * p, 29);
    h1 = rotl64((h1 ^ w[i + 1]) * p, 29);
  }
  if (i < n) h0 = rotl64((h0 ^ w[i]) * p, 29);
  return mix64(mix64(n ^ h0) ^ h1);
}

static struct {
  const char *outfile, *gate;
  uint64_t seed;
  long exit_code;
} opt = {NULL, NULL, 7, 0};

static int out_fd = -1;
static FILE* out_stdio;
static char stdout_buf[1 << 14], stdio_buf[1 << 16];
static char check_msg[1024];

static void die(const char* what) {
  fprintf(stderr, "layout_app: %s: %s\n", what, strerror(errno));
  exit(100);
}

static void emit(const char* line) {
  fputs(line, stdout);
  fflush(stdout);
  if (out_fd >= 0 && write(out_fd, line, strlen(line)) != (ssize_t)strlen(line))
    die("write outfile");
  if (out_stdio) fputs(line, out_stdio);
}

static void wait_gate(const char* suffix) {
  if (!opt.gate) return;
  char path[4096];
  snprintf(path, sizeof path, "%s.%s", opt.gate, suffix);
  struct timespec ts = {0, 2 * 1000 * 1000};
  while (access(path, F_OK) != 0) nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------- regions ---- */

struct region {
  const char* name;
  unsigned char* addr;
  size_t len;
  int live;
};
enum { RA, RA2, RB, RC, RD, RE, RG, RP, RQ, RX, RY, RF, RS, RH, RN, RN2, RN3, RBRK, NREG };
static struct region reg[NREG] = {
    [RA] = {"A", 0, 0, 0},   [RA2] = {"A-tail", 0, 0, 0}, [RB] = {"B", 0, 0, 0},
    [RC] = {"C", 0, 0, 0},   [RD] = {"D", 0, 0, 0},       [RE] = {"E", 0, 0, 0},
    [RG] = {"G", 0, 0, 0},   [RP] = {"P", 0, 0, 0},       [RQ] = {"Q", 0, 0, 0},
    [RX] = {"X", 0, 0, 0},   [RY] = {"Y", 0, 0, 0},       [RF] = {"F", 0, 0, 0},
    [RS] = {"S", 0, 0, 0},   [RH] = {"H", 0, 0, 0},       [RN] = {"N", 0, 0, 0},
    [RN2] = {"N2", 0, 0, 0}, [RN3] = {"N3", 0, 0, 0},     [RBRK] = {"brk", 0, 0, 0}};
static unsigned char* base; /* the reservation */
static unsigned char* brk0; /* start of our part of the brk heap */
static int file_fd = -1;
static const size_t file_len = 1 * MiB;

static unsigned char* at(size_t off_mib) {
  return base + off_mib * MiB;
}

static void fill(unsigned char* p, size_t len, uint64_t tag) {
  uint64_t* w = (uint64_t*)p;
  for (size_t i = 0; i < len / 8; i++) w[i] = mix64((tag << 32) ^ i ^ opt.seed) | 1;
}

static uint64_t file_word(size_t i) {
  return mix64(0xf11e0000ull ^ i) | 1;
}

static void map_fixed_anon(unsigned char* p, size_t len) {
  if (mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p)
    die("mmap MAP_FIXED");
}

static void map_file(void) {
  if (mmap(reg[RF].addr, file_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, file_fd, 0) !=
      reg[RF].addr)
    die("mmap file");
}

static void reserve_again(unsigned char* p, size_t len) { /* give a range back to the reservation */
  if (mmap(p, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) != p)
    die("mmap PROT_NONE");
}

static void poke(unsigned char* p, uint64_t v) {
  p[v % PAGE] ^= (unsigned char)(1 + (v >> 40) % 255);
}

/* ------------------------------------------------------------- checks ---- */

static int zero_page(const unsigned char* p) {
  const uint64_t* w = (const uint64_t*)p;
  for (size_t i = 0; i < PAGE / 8; i++)
    if (w[i]) return 0;
  return 1;
}

static int check_failures;
static void check_fail(const char* what, size_t page) { /* the first 3, then a count */
  size_t n = strlen(check_msg);
  if (++check_failures <= 3)
    snprintf(check_msg + n, sizeof check_msg - n, "%s%s@page%zu", n ? "," : "", what, page);
}

static int stack_errors; /* frames of round 2's recursion that came back damaged */

/* What the steps so far promise about dropped pages. */
static int e_dropped, d_replaced, brk_regrown, f_dropped, f_remapped;
static size_t brk_regrow_off; /* offset in brk region of the regrown part */

/* Pages dropped by the round just done are NOT read in that step's report: a read would
 * map the shared zero page (or the file's page) before the checkpoint, and the tracker
 * would then see a zero page instead of a page that is gone. They are read from the
 * next step on (in a restored process: from memory the chain restored). */
static int cur_step;
static int page_unread(int r, size_t pg) {
  switch (r) {
    case RE:
      return cur_step == 2 && pg % 2 == 0;
    case RD:
      return cur_step == 3 && pg >= reg[RD].len / PAGE / 2;
    case RF:
      return cur_step == 3 && pg % 8 == 0;
    case RBRK:
      return cur_step == 4 && pg * PAGE >= brk_regrow_off + 256 * KiB &&
             pg * PAGE < brk_regrow_off + 512 * KiB;
  }
  return 0;
}

static uint64_t hash_region(int r) {
  uint64_t h = mix64((uint64_t)r ^ reg[r].len);
  for (size_t pg = 0; pg < reg[r].len / PAGE; pg++)
    h = mix64(h ^ (page_unread(r, pg)
                       ? 0x5e1f
                       : hash_words((const uint64_t*)(reg[r].addr + pg * PAGE), PAGE / 8, pg)));
  return h;
}

static void run_checks(void) {
  check_msg[0] = 0;
  check_failures = 0;
  if (e_dropped) { /* even pages of E: zero unless rewritten in round 4 (every 4th even page) */
    for (size_t pg = 0; pg < reg[RE].len / PAGE; pg += 2) {
      const int rewritten = e_dropped > 1 && pg % 8 == 0;
      if (!rewritten && !page_unread(RE, pg) && !zero_page(reg[RE].addr + pg * PAGE))
        check_fail("E-dropped-not-zero", pg);
    }
  }
  if (d_replaced)
    for (size_t pg = reg[RD].len / PAGE / 2; pg < reg[RD].len / PAGE; pg++)
      if (!page_unread(RD, pg) && !zero_page(reg[RD].addr + pg * PAGE))
        check_fail("D-new-not-zero", pg);
  if (brk_regrown)
    for (size_t off = brk_regrow_off + 256 * KiB; off < brk_regrow_off + 512 * KiB; off += PAGE)
      if (!page_unread(RBRK, off / PAGE) && !zero_page(reg[RBRK].addr + off))
        check_fail("brk-regrown-not-zero", off / PAGE);
  if (f_dropped && !f_remapped) { /* pages 0, 8, 16, ...: private copies dropped in round 3 */
    for (size_t pg = 0; pg < file_len / PAGE; pg += 8) {
      if (page_unread(RF, pg)) continue;
      const uint64_t* w = (const uint64_t*)(reg[RF].addr + pg * PAGE);
      if (w[0] != file_word(pg * PAGE / 8) ||
          w[PAGE / 8 - 1] != file_word(pg * PAGE / 8 + PAGE / 8 - 1))
        check_fail("F-dropped-not-file", pg);
    }
  }
  if (f_remapped) { /* everything but pages 3 and 200 is the file's again */
    for (size_t pg = 0; pg < file_len / PAGE; pg++) {
      if (pg == 3 || pg == 200) continue;
      const uint64_t* w = (const uint64_t*)(reg[RF].addr + pg * PAGE);
      if (w[5] != file_word(pg * PAGE / 8 + 5)) check_fail("F-remapped-not-file", pg);
    }
  }
  if (stack_errors) check_fail("stack-frames-damaged", (size_t)stack_errors);
  if (!check_msg[0])
    strcpy(check_msg, "ok");
  else if (check_failures > 3)
    snprintf(check_msg + strlen(check_msg), 32, ",+%d more", check_failures - 3);
}

static void report(int step) {
  char line[sizeof check_msg + 128];
  uint64_t digest = mix64(0x1a70u + (uint64_t)step), h[NREG];
  cur_step = step;
  for (int i = 0; i < NREG; i++) {
    if (reg[i].live != 1) continue; /* 2: PROT_NONE just now, hashed again once readable */
    h[i] = hash_region(i);
    digest = mix64(digest ^ h[i] ^ ((uint64_t)reg[i].len << 1));
  }
  run_checks();
  snprintf(line, sizeof line, "step %d digest %016" PRIx64 " checks %s\n", step, digest, check_msg);
  emit(line);
  for (int i = 0; i < NREG; i++) {
    if (!reg[i].live) continue;
    if (reg[i].live == 2)
      snprintf(line, sizeof line, "  region %s len %zu PROT_NONE\n", reg[i].name, reg[i].len);
    else
      snprintf(line, sizeof line, "  region %s len %zu hash %016" PRIx64 "\n", reg[i].name,
               reg[i].len, h[i]);
    emit(line);
  }
}

/* Round 2 reports, and waits for gate 3, at the bottom of a recursion DEEP_FRAMES deep
 * (about 2 MiB of stack: the main stack grows down between two images, and its new pages
 * hold live frames at the checkpoint). Each frame checks its 4 KiB on the way back up;
 * a damaged frame shows as "stack-frames-damaged" in the checks of the steps after. */
#define DEEP_FRAMES 512
static uint64_t deep_expected;
__attribute__((noinline)) static uint64_t deep(int n, uint64_t seed) {
  volatile uint64_t frame[PAGE / 8];
  for (size_t i = 0; i < PAGE / 8; i++) frame[i] = mix64(seed ^ ((uint64_t)n << 32) ^ i);
  uint64_t h;
  if (n == 0) {
    report(2);
    wait_gate("3");
    h = 0;
  } else {
    h = deep(n - 1, seed);
  }
  for (size_t i = 0; i < PAGE / 8; i++)
    if (frame[i] != mix64(seed ^ ((uint64_t)n << 32) ^ i)) return h ^ 0xbad;
  return mix64(h ^ frame[n % (PAGE / 8)]);
}

static void brk_to(size_t len) { /* our brk region becomes len bytes long */
  const intptr_t delta = (intptr_t)len - (intptr_t)reg[RBRK].len;
  if (sbrk(delta) == (void*)-1) die("sbrk");
  if ((unsigned char*)sbrk(0) != brk0 + len) {
    errno = EINVAL;
    die("brk moved under us");
  }
  reg[RBRK].len = len;
}

/* -------------------------------------------------------------- rounds ---- */

static void setup(void) {
  base = mmap(NULL, RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) die("mmap reservation");
  static const struct {
    int r;
    size_t off, len;
  } init[] = {{RA, 0, 4 * MiB},  {RB, 5, 4 * MiB},  {RC, 10, 2 * MiB}, {RD, 13, 2 * MiB},
              {RE, 16, 1 * MiB}, {RG, 18, 4 * MiB}, {RP, 25, 2 * MiB}, {RQ, 27, 2 * MiB},
              {RX, 30, 1 * MiB}, {RY, 32, 1 * MiB}};
  for (size_t i = 0; i < sizeof init / sizeof init[0]; i++) {
    struct region* g = &reg[init[i].r];
    g->addr = at(init[i].off);
    g->len = init[i].len;
    g->live = 1;
    map_fixed_anon(g->addr, g->len);
    fill(g->addr, g->len, (uint64_t)init[i].r);
  }
  /* S: shared anonymous (never tracked: saved whole in every image); H: private, made
   * PROT_NONE with data in it in round 3 (saved through /proc/self/mem) */
  reg[RS] = (struct region){"S", at(36), 1 * MiB, 1};
  if (mmap(reg[RS].addr, reg[RS].len, PROT_READ | PROT_WRITE,
           MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != reg[RS].addr)
    die("mmap shared");
  fill(reg[RS].addr, reg[RS].len, 0x53);
  reg[RH] = (struct region){"H", at(38), 1 * MiB, 1};
  map_fixed_anon(reg[RH].addr, reg[RH].len);
  fill(reg[RH].addr, reg[RH].len, 0x48);
  /* the private file mapping */
  char path[4096];
  snprintf(path, sizeof path, "%s.map", opt.outfile ? opt.outfile : "layout_app");
  file_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (file_fd < 0) die(path);
  static uint64_t fbuf[PAGE / 8];
  for (size_t pg = 0; pg < file_len / PAGE; pg++) {
    for (size_t i = 0; i < PAGE / 8; i++) fbuf[i] = file_word(pg * PAGE / 8 + i);
    if (pwrite(file_fd, fbuf, PAGE, (off_t)(pg * PAGE)) != (ssize_t)PAGE) die("write map file");
  }
  if (fsync(file_fd) != 0) die("fsync");
  reg[RF].addr = at(34);
  reg[RF].len = file_len;
  reg[RF].live = 1;
  map_file();
  for (size_t pg = 0; pg < file_len / PAGE; pg += 4)
    poke(reg[RF].addr + pg * PAGE, mix64(pg ^ 0xf));
  /* brk */
  brk0 = sbrk(0);
  if (brk0 == (void*)-1) die("sbrk(0)");
  reg[RBRK].addr = brk0;
  reg[RBRK].live = 1;
  brk_to(2 * MiB);
  fill(brk0, 2 * MiB, 0xb0);
}

static void round1(void) {
  reg[RN] = (struct region){"N", at(45), 3 * MiB, 1};
  map_fixed_anon(reg[RN].addr, reg[RN].len);
  fill(reg[RN].addr, reg[RN].len, 0x41);
  unsigned char* n2 =
      mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (n2 == MAP_FAILED) die("mmap N2");
  reg[RN2] = (struct region){"N2", n2, 2 * MiB, 1};
  fill(n2, 2 * MiB, 0x42);
  if (munmap(reg[RB].addr, reg[RB].len) != 0) die("munmap B");
  reg[RB].live = 0;
  brk_to(3 * MiB);
  fill(brk0 + 2 * MiB, 1 * MiB, 0xb1);
  for (size_t pg = 0; pg < reg[RA].len / PAGE; pg += 16)
    poke(reg[RA].addr + pg * PAGE, mix64(pg + 1));
  for (size_t pg = 0; pg < reg[RP].len / PAGE; pg++) poke(reg[RP].addr + pg * PAGE, mix64(pg + 2));
}

static void round2(void) {
  unsigned char* to = at(50);
  void* p = mremap(reg[RC].addr, reg[RC].len, 3 * MiB, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  if (p != to) die("mremap C (move and grow)");
  reg[RC].addr = to;
  reg[RC].len = 3 * MiB;
  reserve_again(at(10), 2 * MiB); /* where C was */
  fill(to + 2 * MiB, 1 * MiB, 0x43);
  if (munmap(at(22), 2 * MiB) != 0) die("munmap gap after G");
  p = mremap(reg[RG].addr, 4 * MiB, 6 * MiB, 0);
  if (p == MAP_FAILED) p = mremap(reg[RG].addr, 4 * MiB, 6 * MiB, MREMAP_MAYMOVE); /* same bytes */
  if (p == MAP_FAILED) die("mremap G (grow)");
  reg[RG].addr = p;
  reg[RG].len = 6 * MiB;
  fill(reg[RG].addr + 4 * MiB, 2 * MiB, 0x47);
  brk_to(3 * MiB / 2);
  for (size_t pg = 0; pg < reg[RE].len / PAGE; pg += 2)
    if (madvise(reg[RE].addr + pg * PAGE, PAGE, MADV_DONTNEED) != 0) die("MADV_DONTNEED E");
  e_dropped = 1;
}

static void round3(void) {
  map_fixed_anon(reg[RD].addr, reg[RD].len); /* same address and size, a new mapping */
  fill(reg[RD].addr, reg[RD].len / 2, 0x44);
  d_replaced = 1;
  map_fixed_anon(reg[RQ].addr, reg[RQ].len);
  fill(reg[RQ].addr, reg[RQ].len, 0x51);
  /* A loses [1, 2) MiB (a real hole): the rest is A [0,1) and A-tail [2,4) */
  if (munmap(reg[RA].addr + 1 * MiB, 1 * MiB) != 0) die("munmap middle of A");
  reg[RA2] = (struct region){"A-tail", reg[RA].addr + 2 * MiB, 2 * MiB, 1};
  reg[RA].len = 1 * MiB;
  if (mprotect(reg[RN].addr + 1 * MiB, 1 * MiB, PROT_READ) != 0) die("mprotect N");
  for (size_t pg = 0; pg < file_len / PAGE; pg += 8)
    if (madvise(reg[RF].addr + pg * PAGE, PAGE, MADV_DONTNEED) != 0) die("MADV_DONTNEED F");
  f_dropped = 1;
  for (size_t pg = 1; pg < reg[RE].len / PAGE; pg += 2)
    poke(reg[RE].addr + pg * PAGE, mix64(pg + 3));
  for (size_t pg = 0; pg < reg[RH].len / PAGE; pg += 5)
    poke(reg[RH].addr + pg * PAGE, mix64(pg + 7));
  if (mprotect(reg[RH].addr, reg[RH].len, PROT_NONE) != 0) die("mprotect H PROT_NONE");
  reg[RH].live = 2;
}

static void round4(void) {
  void* p =
      mremap(reg[RX].addr, reg[RX].len, reg[RX].len, MREMAP_MAYMOVE | MREMAP_FIXED, reg[RY].addr);
  if (p != reg[RY].addr) die("mremap X onto Y");
  reserve_again(reg[RX].addr, reg[RX].len);
  reg[RX].live = 0; /* Y keeps its name, with X's bytes */
  brk_regrow_off = reg[RBRK].len;
  brk_to(reg[RBRK].len + 512 * KiB);
  brk_regrown = 1;
  fill(brk0 + brk_regrow_off, 256 * KiB, 0xb4);
  map_file();
  f_remapped = 1;
  poke(reg[RF].addr + 3 * PAGE, 3);
  poke(reg[RF].addr + 200 * PAGE, 200);
  if (mprotect(reg[RN].addr + 1 * MiB, 1 * MiB, PROT_READ | PROT_WRITE) != 0)
    die("mprotect N back");
  for (size_t pg = 0; pg < reg[RN].len / PAGE; pg += 3)
    poke(reg[RN].addr + pg * PAGE, mix64(pg + 4));
  for (size_t pg = 0; pg < reg[RE].len / PAGE; pg += 8)
    poke(reg[RE].addr + pg * PAGE, mix64(pg + 5));
  e_dropped = 2;
  if (mprotect(reg[RH].addr, reg[RH].len, PROT_READ | PROT_WRITE) != 0) die("mprotect H back");
  reg[RH].live = 1;
  poke(reg[RH].addr + 9 * PAGE, 9);
}

static void round5(void) {
  const size_t old = reg[RBRK].len;
  brk_to(old + 256 * KiB);
  fill(brk0 + old, 256 * KiB, 0xb5);
  unsigned char* n3 =
      mmap(NULL, 1 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (n3 == MAP_FAILED) die("mmap N3");
  reg[RN3] = (struct region){"N3", n3, 1 * MiB, 1};
  fill(n3, 1 * MiB, 0x45);
  if (munmap(reg[RY].addr, reg[RY].len) != 0) die("munmap Y");
  reg[RY].live = 0;
  for (int i = 0; i < NREG; i++) {
    if (reg[i].live != 1 || i == RBRK) continue;
    /* one byte in one page, away from the pages the checks look at */
    size_t pg = (reg[i].len / PAGE) / 2 + 1;
    if (i == RE) pg |= 1;
    if (i == RD) pg = 1;
    if (i == RF) pg = 3;
    poke(reg[i].addr + pg * PAGE, mix64((uint64_t)i + 6));
  }
}

int main(int argc, char** argv) {
  static const struct option longopts[] = {{"outfile", required_argument, 0, 'o'},
                                           {"gate", required_argument, 0, 'g'},
                                           {"seed", required_argument, 0, 'S'},
                                           {"exit-code", required_argument, 0, 'x'},
                                           {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 'o':
        opt.outfile = optarg;
        break;
      case 'g':
        opt.gate = optarg;
        break;
      case 'S':
        opt.seed = strtoull(optarg, NULL, 10);
        break;
      case 'x':
        opt.exit_code = strtol(optarg, NULL, 10);
        break;
      default:
        fprintf(stderr,
                "usage: layout_app [--outfile PATH] [--gate PREFIX] [--seed S] [--exit-code C]\n");
        return 2;
    }
  }
  setvbuf(stdout, stdout_buf, _IOFBF, sizeof stdout_buf);
  if (opt.outfile) {
    out_fd = open(opt.outfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0) die(opt.outfile);
    char sp[4096];
    snprintf(sp, sizeof sp, "%s.stdio", opt.outfile);
    out_stdio = fopen(sp, "w");
    if (!out_stdio) die(sp);
    setvbuf(out_stdio, stdio_buf, _IOFBF, sizeof stdio_buf); /* no malloc: brk stays ours */
  }
  { /* what deep() returns when every frame survives */
    uint64_t h = 0;
    for (int n = 0; n <= DEEP_FRAMES; n++)
      h = mix64(h ^ mix64(0x5eedull ^ ((uint64_t)n << 32) ^ (uint64_t)(n % (PAGE / 8))));
    deep_expected = h;
  }
  setup();
  report(0);
  void (*rounds[ROUNDS])(void) = {round1, round2, round3, round4, round5};
  for (int k = 1; k <= ROUNDS; k++) {
    char g[16];
    snprintf(g, sizeof g, "%d", k);
    if (k != 3) wait_gate(g); /* gate 3 is waited for at the bottom of round 2's recursion */
    rounds[k - 1]();
    for (size_t pg = (size_t)k; pg < reg[RS].len / PAGE; pg += 37)
      poke(reg[RS].addr + pg * PAGE, mix64(pg * 31 + (uint64_t)k));
    if (k == 2) {
      const uint64_t h = deep(DEEP_FRAMES, 0x5eed);
      if (h != deep_expected) stack_errors++;
    } else {
      report(k);
    }
  }
  wait_gate("final");
  uint64_t h = 0;
  for (int i = 0; i < NREG; i++)
    if (reg[i].live == 1)
      h = mix64(h ^ hash_words((const uint64_t*)reg[i].addr, reg[i].len / 8, 99));
  char line[64];
  snprintf(line, sizeof line, "final %016" PRIx64 "\n", h);
  emit(line);
  if (out_stdio && fclose(out_stdio) != 0) die("fclose");
  if (out_fd >= 0) close(out_fd);
  return (int)opt.exit_code;
}
