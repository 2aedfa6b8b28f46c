/* hints_app: the subject of tests/scripts/hints.sh, a plain C program that uses every call
 * of the memory hints API (include/ompi_cr/hints.h).
 *
 * Memory: one anonymous mapping carved into regions A..M, each preceded by an unhinted
 * guard page (and one guard page at the end), every 8-byte word filled with a non-zero
 * pattern derived from its offset. Each region gets hints of one kind (see setup_hints for
 * the exact ranges and what each one tests); hints.sh knows, independently, which whole
 * pages must be missing from the image: 29 pages "hinted", 23 pages "receive-buffer".
 * "checkN map NAME xxxx" prints one letter per page: P = pattern intact, Z = all zero,
 * X = anything else. In the original process every page reads P; in a restored one the
 * excluded pages read Z and all others P.
 *
 * Flow (gate files in --gate-dir make every step wait for the test, never for time):
 *   main: "active 1", error checks ("errors ok"), hints + callbacks ("setup ok"),
 *         starts the cs thread, waits for gate.main;
 *   cs thread: enters a critical section, "cs open", waits for gate.cs, "cs closing",
 *         leaves it, then waits until main is done;
 *   hints.sh checkpoints while the section is open (ompi-checkpoint -v): the callbacks
 *         print "callback first CHECKPOINT", "callback second CHECKPOINT", and the
 *         checkpoint must not complete before "cs closing";
 *   main (after gate.main): "cs_state 2", check1 maps, ompi_cr_checkpoint() ->
 *         "explicit checkpoint returned 0" (1 in a process restored from that image),
 *         check2 maps, waits for gate.end, "done", exit 0.
 * With --timeout-mode (run with a short critical-section timeout) main instead calls
 * ompi_cr_checkpoint() right after gate.main, while the section is still open (expected:
 * -5, OMPI_CR_ERR_TIMEOUT), waits for gate.retry (the test opens gate.cs first), calls it
 * again (expected: 0), waits for gate.end and ends.
 * Callbacks print "callback <first|second> <CHECKPOINT|CONTINUE|RESTART>"; a third one is
 * registered and unregistered again, so it never prints. Output goes through write(2)
 * line by line: no stdio buffer can hold lines across a checkpoint.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ompi_cr/hints.h"

#define PG 4096u

static void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  for (int off = 0; off < n;) {
    ssize_t w = write(1, buf + off, (size_t)(n - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    off += (int)w;
  }
}

static void die(const char* what) {
  say("FAILED: %s", what);
  exit(3);
}

/* ------------------------------------------------------------------ memory ---- */

struct region {
  const char* name;
  size_t pages;
  size_t first; /* page index in the block, set by layout() */
};

static struct region regions[] = {
    {"A", 16, 0}, {"B", 8, 0}, {"C", 4, 0}, {"D", 12, 0}, {"E", 10, 0}, {"G", 4, 0}, {"H", 2, 0},
    {"F", 16, 0}, {"I", 4, 0}, {"J", 4, 0}, {"K", 4, 0},  {"L", 8, 0},  {"M", 4, 0},
};
#define NREGIONS (sizeof regions / sizeof regions[0])

static char* block;
static size_t block_pages;

static uint64_t pattern(size_t word) {
  uint64_t x = (uint64_t)word * 0x9e3779b97f4a7c15ull + 0x243f6a8885a308d3ull;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 29;
  return x | 1; /* never zero: a zero page can only come from an exclusion */
}

static void layout(void) {
  size_t pg = 0;
  for (size_t r = 0; r < NREGIONS; r++) {
    pg++; /* guard page */
    regions[r].first = pg;
    pg += regions[r].pages;
  }
  block_pages = pg + 1; /* final guard page */
  block = mmap(NULL, block_pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (block == MAP_FAILED) die("mmap");
  uint64_t* w = (uint64_t*)block;
  for (size_t i = 0; i < block_pages * PG / 8; i++) w[i] = pattern(i);
}

static char* reg(const char* name) {
  for (size_t r = 0; r < NREGIONS; r++)
    if (!strcmp(regions[r].name, name)) return block + regions[r].first * PG;
  die("no such region");
  return NULL;
}

static char page_state(size_t pg) {
  const uint64_t* w = (const uint64_t*)(block + pg * PG);
  int all_pattern = 1, all_zero = 1;
  for (size_t i = 0; i < PG / 8; i++) {
    if (w[i] != pattern(pg * PG / 8 + i)) all_pattern = 0;
    if (w[i] != 0) all_zero = 0;
  }
  return all_pattern ? 'P' : all_zero ? 'Z' : 'X';
}

static void print_maps(const char* tag) {
  char line[256];
  for (size_t r = 0; r < NREGIONS; r++) {
    size_t n = 0;
    for (size_t k = 0; k < regions[r].pages; k++) line[n++] = page_state(regions[r].first + k);
    line[n] = 0;
    say("%s map %s %s", tag, regions[r].name, line);
  }
  size_t n = 0;
  for (size_t r = 0; r < NREGIONS; r++) line[n++] = page_state(regions[r].first - 1);
  line[n++] = page_state(block_pages - 1);
  line[n] = 0;
  say("%s map guards %s", tag, line);
}

/* ------------------------------------------------------------------- hints ---- */

static ompi_cr_handle_t h_g, h_f1, h_j, h_k;

static void check(int got, int want, const char* what) {
  if (got != want) {
    say("FAILED: %s returned %d (%s), expected %d", what, got, ompi_cr_strerror(got), want);
    exit(3);
  }
}

static void setup_hints(void) {
  ompi_cr_handle_t h;
  const size_t P = PG;
  /* A: page-aligned exclusion of pages 2..5. */
  check(ompi_cr_exclude(reg("A") + 2 * P, 4 * P, &h), 0, "exclude A");
  /* B: unaligned [P+100, 5P+200): only pages 2..4 are whole; pages 1 and 5 are saved. */
  check(ompi_cr_exclude(reg("B") + P + 100, 4 * P + 100, &h), 0, "exclude B");
  /* C: two halves that only together cover page 1, then page 2: union -> pages 1..2. */
  check(ompi_cr_exclude(reg("C") + P, 2048, &h), 0, "exclude C1");
  check(ompi_cr_exclude(reg("C") + P + 2048, 2 * P - 2048, &h), 0, "exclude C2");
  /* D: pages 0..9 excluded, 10 bytes inside page 4 always included: page 4 is saved. */
  check(ompi_cr_exclude(reg("D"), 10 * P, &h), 0, "exclude D");
  check(ompi_cr_include(reg("D") + 4 * P + 10, 10, &h), 0, "include D");
  /* E: overlapping exclusions [P,5P) and [3P,8P): union -> pages 1..7. */
  check(ompi_cr_exclude(reg("E") + P, 4 * P, &h), 0, "exclude E1");
  check(ompi_cr_exclude(reg("E") + 3 * P, 5 * P, &h), 0, "exclude E2");
  /* G: excluded, then the hint is removed: saved. */
  check(ompi_cr_exclude(reg("G") + P, 2 * P, &h_g), 0, "exclude G");
  check(ompi_cr_hint_remove(h_g), 0, "remove G");
  /* H: no whole page inside: saved. */
  check(ompi_cr_exclude(reg("H") + 100, 3900, &h), 0, "exclude H");
  /* F: an empty receive buffer over pages 0..7, and one at [8P+100, 16P) holding 5000
   * bytes of message at buffer offset 3P (pages 11..12): pages 9,10,13,14,15 excluded. */
  check(ompi_cr_recvbuf_register(reg("F"), 8 * P, &h_f1), 0, "recvbuf F1");
  check(ompi_cr_recvbuf_register(reg("F") + 8 * P + 100, 8 * P - 100, &h), 0, "recvbuf F2");
  check(ompi_cr_recvbuf_set_data(h, 3 * P, 5000), 0, "set_data F2");
  /* I: held a message, then holds nothing again: pages 0..3 excluded. */
  check(ompi_cr_recvbuf_register(reg("I"), 4 * P, &h), 0, "recvbuf I");
  check(ompi_cr_recvbuf_set_data(h, 0, 4 * P), 0, "set_data I full");
  check(ompi_cr_recvbuf_set_data(h, 0, 0), 0, "set_data I empty");
  /* J: registered and deregistered: saved. */
  check(ompi_cr_recvbuf_register(reg("J"), 4 * P, &h_j), 0, "recvbuf J");
  check(ompi_cr_recvbuf_set_data(h_j, 0, 10), 0, "set_data J");
  check(ompi_cr_recvbuf_deregister(h_j), 0, "deregister J");
  /* K: completely filled with message data: saved. */
  check(ompi_cr_recvbuf_register(reg("K"), 4 * P, &h_k), 0, "recvbuf K");
  check(ompi_cr_recvbuf_set_data(h_k, 0, 4 * P), 0, "set_data K");
  /* L: pages 0..7 excluded; an empty receive buffer over pages 2..5 with 100 bytes of
   * message at the start of page 3. Page 3 is saved (message data wins), pages 2,4,5 count
   * as receive-buffer, pages 0,1,6,7 as hinted. */
  check(ompi_cr_exclude(reg("L"), 8 * P, &h), 0, "exclude L");
  check(ompi_cr_recvbuf_register(reg("L") + 2 * P, 4 * P, &h), 0, "recvbuf L");
  check(ompi_cr_recvbuf_set_data(h, P, 100), 0, "set_data L");
  /* M: an empty receive buffer over pages 0..3, page 1 always included. */
  check(ompi_cr_recvbuf_register(reg("M"), 4 * P, &h), 0, "recvbuf M");
  check(ompi_cr_include(reg("M") + P, P, &h), 0, "include M");
}

static void error_checks(void) {
  ompi_cr_handle_t h;
  check(ompi_cr_exclude(NULL, PG, &h), OMPI_CR_ERR_INVALID, "exclude(NULL)");
  check(ompi_cr_exclude(reg("A"), 0, &h), OMPI_CR_ERR_INVALID, "exclude(len 0)");
  check(ompi_cr_include(reg("A"), PG, NULL), OMPI_CR_ERR_INVALID, "include(handle NULL)");
  check(ompi_cr_recvbuf_register((void*)(uintptr_t)-4096, 8192, &h), OMPI_CR_ERR_INVALID,
        "recvbuf_register(wrapping)");
  check(ompi_cr_recvbuf_register(reg("F") + PG, PG, &h), OMPI_CR_ERR_CONFLICT,
        "recvbuf_register(overlapping F1)");
  check(ompi_cr_recvbuf_set_data(h_k, 4 * PG, 1), OMPI_CR_ERR_INVALID, "set_data(outside K)");
  check(ompi_cr_hint_remove(h_f1), OMPI_CR_ERR_UNKNOWN_HANDLE, "hint_remove(recv handle)");
  check(ompi_cr_hint_remove(h_g), OMPI_CR_ERR_UNKNOWN_HANDLE, "hint_remove(removed)");
  check(ompi_cr_hint_remove(0), OMPI_CR_ERR_UNKNOWN_HANDLE, "hint_remove(0)");
  check(ompi_cr_recvbuf_deregister(h_j), OMPI_CR_ERR_UNKNOWN_HANDLE, "deregister(twice)");
  check(ompi_cr_recvbuf_set_data(h_j, 0, 0), OMPI_CR_ERR_UNKNOWN_HANDLE, "set_data(gone)");
  check(ompi_cr_callback_register(NULL, NULL, &h), OMPI_CR_ERR_INVALID, "callback_register(NULL)");
  check(ompi_cr_callback_unregister(h_k), OMPI_CR_ERR_UNKNOWN_HANDLE, "callback_unregister(recv)");
  check(ompi_cr_cs_leave(), OMPI_CR_ERR_INVALID, "cs_leave outside");
  check(ompi_cr_cs_enter(), 0, "cs_enter");
  check(ompi_cr_checkpoint(), OMPI_CR_ERR_INVALID, "checkpoint inside a critical section");
  check(ompi_cr_cs_leave(), 0, "cs_leave");
  if (!ompi_cr_strerror(OMPI_CR_ERR_CONFLICT) || !ompi_cr_strerror(12345)) die("strerror");
  /* The documented way for a library without a link-time dependency. */
  if (dlsym(RTLD_DEFAULT, "ompi_cr_recvbuf_register") != (void*)ompi_cr_recvbuf_register)
    die("dlsym(RTLD_DEFAULT, ompi_cr_recvbuf_register)");
}

/* --------------------------------------------------------------- callbacks ---- */

static void callback(ompi_cr_phase_t phase, void* arg) {
  const char* p = phase == OMPI_CR_PHASE_CHECKPOINT ? "CHECKPOINT"
                  : phase == OMPI_CR_PHASE_CONTINUE ? "CONTINUE"
                  : phase == OMPI_CR_PHASE_RESTART  ? "RESTART"
                                                    : "BAD-PHASE";
  say("callback %s %s", (const char*)arg, p);
  /* A slow last RESTART callback: the restored threads already run, so main reaches its
   * ompi_cr_checkpoint() call while the restore is still finishing. That request must get
   * a checkpoint of its own, not the completion of the restore. */
  if (phase == OMPI_CR_PHASE_RESTART && !strcmp((const char*)arg, "first")) {
    struct timespec ts = {0, 300 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
}

/* ------------------------------------------------------------------ threads ---- */

static const char* gate_dir;
static volatile int cs_state; /* 1 inside the section, 2 after it */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int main_done;

static void wait_gate(const char* name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", gate_dir, name);
  struct timespec ts = {0, 10 * 1000 * 1000};
  for (long k = 0; access(path, F_OK) != 0; k++) {
    if (k > 60000) die("gave up waiting for a gate file (10 minutes)");
    nanosleep(&ts, NULL);
  }
}

static void* cs_thread(void* arg) {
  (void)arg;
  check(ompi_cr_cs_enter(), 0, "cs_enter (thread)");
  cs_state = 1;
  say("cs open");
  wait_gate("gate.cs");
  cs_state = 2;
  say("cs closing");
  check(ompi_cr_cs_leave(), 0, "cs_leave (thread)");
  pthread_mutex_lock(&mu);
  while (!main_done) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  return NULL;
}

int main(int argc, char** argv) {
  int timeout_mode = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--gate-dir") && i + 1 < argc) gate_dir = argv[++i];
    if (!strcmp(argv[i], "--timeout-mode")) timeout_mode = 1;
  }
  if (!gate_dir) {
    fprintf(stderr, "usage: %s --gate-dir DIR\n", argv[0]);
    return 2;
  }
  say("active %d", ompi_cr_active());
  layout();
  setup_hints();
  error_checks();
  say("errors ok");
  ompi_cr_handle_t cb1, cb2, cb3;
  check(ompi_cr_callback_register(callback, "first", &cb1), 0, "callback_register first");
  check(ompi_cr_callback_register(callback, "dropped", &cb3), 0, "callback_register dropped");
  check(ompi_cr_callback_register(callback, "second", &cb2), 0, "callback_register second");
  check(ompi_cr_callback_unregister(cb3), 0, "callback_unregister dropped");
  say("setup ok");

  pthread_t t;
  if (pthread_create(&t, NULL, cs_thread, NULL) != 0) die("pthread_create");
  wait_gate("gate.main");
  if (timeout_mode) {
    say("explicit checkpoint returned %d", ompi_cr_checkpoint());
    wait_gate("gate.retry");
    say("explicit checkpoint returned %d", ompi_cr_checkpoint());
  } else {
    say("cs_state %d", cs_state);
    print_maps("check1");
    int rc = ompi_cr_checkpoint();
    say("explicit checkpoint returned %d", rc);
    print_maps("check2");
  }
  wait_gate("gate.end");
  pthread_mutex_lock(&mu);
  main_done = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  pthread_join(t, NULL);
  say("done");
  return 0;
}
