/* mt_common.h: shared pieces of the multi-threaded end-to-end test programs (mt_*.c).
 *
 * Every mt_* program follows the conventions of stateful_app.c so that the helpers in
 * tests/scripts/lib.sh work unchanged:
 *   --steps N        number of steps (one stdout line "step <i> digest <16 hex> ..." each,
 *                    written with one printf and flushed)
 *   --outfile PATH   the same lines are also written to PATH with write(2) and to
 *                    PATH.stdio through a FILE* that is flushed only at the end
 *   --gate PATH      before the last step, wait until PATH exists (no state changes)
 *   --step-ms K      amount of work per step (work, not time: output never depends on it)
 *   --exit-code C    exit code after the final line
 * Output never contains tids, pids, addresses or times. A failed self-check increments
 * mt_errors (part of every digest line as "errors N") and prints the reason on stderr.
 */
#ifndef MT_COMMON_H
#define MT_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t mt_rotl(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

static inline uint64_t mt_mix(uint64_t x) { /* splitmix64 finaliser */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

static inline uint64_t mt_fold(uint64_t h, uint64_t v) {
  return mt_mix(h ^ (v + 0x9e3779b97f4a7c15ull + mt_rotl(h, 17)));
}

/* xorshift64*: the per-thread PRNG of the programs */
static inline uint64_t mt_rand(uint64_t* s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545f4914f6cdd1dull;
}

/* A fixed amount of integer work; the result depends only on (seed, reps). */
static inline uint64_t mt_work(uint64_t seed, long reps) {
  uint64_t h = seed | 1;
  for (long r = 0; r < reps; r++) {
    h ^= h << 13;
    h ^= h >> 7;
    h ^= h << 17;
    h += (uint64_t)r;
  }
  return mt_mix(h);
}
/* about 1 ms of mt_work on the development machine (2 cores, x86_64) */
#define MT_REPS_PER_MS 400000L

struct mt_opts {
  long steps, step_ms, threads, exit_code;
  const char *outfile, *gate;
  long extra[4]; /* program-specific numeric options */
};

static struct mt_opts mt_opt;
static atomic_ulong mt_errors;
static const char* mt_prog = "mt";
static int mt_out_fd = -1;
static FILE* mt_out_fp;

static void mt_die(const char* what) {
  fprintf(stderr, "%s: %s: %s\n", mt_prog, what, strerror(errno));
  exit(100);
}

/* A failed self-check: counted (it changes the output) and explained on stderr. */
__attribute__((format(printf, 1, 2))) static void mt_error(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  atomic_fetch_add(&mt_errors, 1);
  fprintf(stderr, "%s: check failed: %s\n", mt_prog, buf);
}

#define MT_CHECK(cond, ...)             \
  do {                                  \
    if (!(cond)) mt_error(__VA_ARGS__); \
  } while (0)

static long mt_parse_long(const char* name, const char* s, long lo, long hi) {
  char* end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || end == s || v < lo || v > hi) {
    fprintf(stderr, "%s: bad value for --%s: '%s' (expected %ld..%ld)\n", mt_prog, name, s, lo, hi);
    exit(2);
  }
  return v;
}

/* Parses the common options and up to four program-specific ones (names[i], default
 * defs[i]; NULL name = unused), then opens the output files. */
static void mt_init(int argc, char** argv, const char* prog, long steps, long step_ms, long threads,
                    const char* const names[4], const long defs[4]) {
  mt_prog = prog;
  mt_opt.steps = steps;
  mt_opt.step_ms = step_ms;
  mt_opt.threads = threads;
  for (int i = 0; i < 4; i++) mt_opt.extra[i] = defs ? defs[i] : 0;
  struct option longopts[12] = {
      {"steps", required_argument, 0, 's'},   {"step-ms", required_argument, 0, 'k'},
      {"threads", required_argument, 0, 't'}, {"exit-code", required_argument, 0, 'x'},
      {"outfile", required_argument, 0, 'o'}, {"gate", required_argument, 0, 'g'},
  };
  int n = 6;
  for (int i = 0; i < 4; i++)
    if (names && names[i]) longopts[n++] = (struct option){names[i], required_argument, 0, '0' + i};
  longopts[n] = (struct option){0, 0, 0, 0};
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 's':
        mt_opt.steps = mt_parse_long("steps", optarg, 1, 1000000);
        break;
      case 'k':
        mt_opt.step_ms = mt_parse_long("step-ms", optarg, 0, 100000);
        break;
      case 't':
        mt_opt.threads = mt_parse_long("threads", optarg, 1, 512);
        break;
      case 'x':
        mt_opt.exit_code = mt_parse_long("exit-code", optarg, 0, 255);
        break;
      case 'o':
        mt_opt.outfile = optarg;
        break;
      case 'g':
        mt_opt.gate = optarg;
        break;
      case '0':
      case '1':
      case '2':
      case '3':
        mt_opt.extra[c - '0'] = mt_parse_long(names[c - '0'], optarg, 0, 1L << 40);
        break;
      default:
        fprintf(stderr,
                "usage: %s [--steps N] [--step-ms K] [--threads T] [--exit-code C] [--outfile P] "
                "[--gate P]",
                prog);
        for (int i = 0; i < 4; i++)
          if (names && names[i]) fprintf(stderr, " [--%s N]", names[i]);
        fprintf(stderr, "\n");
        exit(2);
    }
  }
  if (optind != argc) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
    exit(2);
  }
  if (mt_opt.outfile) {
    mt_out_fd = open(mt_opt.outfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (mt_out_fd < 0) mt_die(mt_opt.outfile);
    char path[4096];
    snprintf(path, sizeof path, "%s.stdio", mt_opt.outfile);
    mt_out_fp = fopen(path, "we");
    if (!mt_out_fp) mt_die(path);
  }
}

static void mt_write_all(int fd, const char* p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      mt_die("write outfile");
    }
    p += w;
    n -= (size_t)w;
  }
}

/* One output line (stdout flushed, outfile, outfile.stdio). */
__attribute__((format(printf, 1, 2))) static void mt_line(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0 || n >= (int)sizeof buf) n = (int)strlen(buf);
  fputs(buf, stdout);
  fflush(stdout);
  if (mt_out_fd >= 0) mt_write_all(mt_out_fd, buf, (size_t)n);
  if (mt_out_fp) fputs(buf, mt_out_fp);
}

static void mt_step_line(long step, uint64_t digest) {
  mt_line("step %ld digest %016" PRIx64 " errors %lu\n", step, digest, atomic_load(&mt_errors));
}

/* Prints the final line, closes the files and returns the exit code to use. */
static int mt_finish(uint64_t digest) {
  mt_line("final %016" PRIx64 " errors %lu\n", digest, atomic_load(&mt_errors));
  if (mt_out_fp && fclose(mt_out_fp) != 0) mt_die("fclose outfile.stdio");
  if (mt_out_fd >= 0 && close(mt_out_fd) != 0) mt_die("close outfile");
  return atomic_load(&mt_errors) ? 99 : (int)mt_opt.exit_code;
}

/* Sleeps `ms` milliseconds of CLOCK_MONOTONIC, however often a signal interrupts it (a
 * checkpoint's quiesce signal makes nanosleep return EINTR, and across a restore the
 * remaining time is lost with the kernel's restart block): loops on the absolute
 * deadline. */
static void mt_sleep_ms(long ms) {
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  dl.tv_sec += ms / 1000;
  dl.tv_nsec += (ms % 1000) * 1000000L;
  if (dl.tv_nsec >= 1000000000L) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000L;
  }
  int r;
  while ((r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL)) == EINTR) {
  }
  if (r) {
    errno = r;
    mt_die("clock_nanosleep");
  }
}

/* Before the last step: wait for the gate file (the test's go-ahead). */
static void mt_wait_gate(long step) {
  if (step != mt_opt.steps || !mt_opt.gate) return;
  while (access(mt_opt.gate, F_OK) != 0) mt_sleep_ms(2);
}

static inline pid_t mt_gettid(void) {
  return (pid_t)syscall(SYS_gettid);
}

#endif
