/* heap_fill: the subject of bench/ckpt_restore_bench.sh.
 *
 *   heap_fill MIB            malloc MIB MiB, fill every byte with a pseudo-random pattern,
 *                            print "ready ...", then wait (poll every 1 ms) forever
 *   heap_fill --emit MIB     write the same MIB MiB pattern to stdout and exit (the
 *                            benchmark's "random-ish file held in page cache" for dd)
 *
 * The pattern is xorshift64* output, 8 bytes at a time: no zero pages, nothing a
 * compressor or a zero-page detector could shortcut. One malloc of more than the mmap
 * threshold, so glibc serves it with a private anonymous mmap of its own.
 *
 * Restore timing without signals (ompi-cr owns SIGUSR2, and any signal would have to be
 * sent by someone who knows when to send it): every millisecond the waiting loop asks the
 * kernel who it is: getpid() (glibc >= 2.25 does not cache it) and the start time of the
 * process (field 22 of /proc/self/stat). A restored process is a new kernel process: it
 * has a new start time even when the restorer gave it back its old PID. The first
 * iteration that sees a change prints
 *
 *   running pid=<now> was=<before> t_ns=<CLOCK_REALTIME ns>
 *
 * (t_ns is taken right after the change is seen: at most ~1 ms after the restored main
 * thread runs again), then re-checks the whole pattern and prints "verified ok" or
 * "verified BAD at offset N". The benchmark subtracts its own CLOCK_REALTIME taken just
 * before it launched ompi-restart from t_ns.
 *
 * Output goes through write(2) directly: no stdio buffer can be lost with --term or
 * printed twice after a restore.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const uint64_t kSeed = 0x9e3779b97f4a7c15ull;

static inline uint64_t next(uint64_t* s) { /* xorshift64* */
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545f4914f6cdd1dull;
}

static void fill(uint64_t* p, size_t words, uint64_t* state) {
  for (size_t i = 0; i < words; i++) p[i] = next(state);
}

/* Index of the first word that differs from the pattern, or words if all match. */
static size_t check(const uint64_t* p, size_t words, uint64_t* state) {
  for (size_t i = 0; i < words; i++)
    if (p[i] != next(state)) return i;
  return words;
}

static void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n <= 0) return;
  if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
  const char* p = buf;
  while (n > 0) {
    ssize_t w = write(1, p, (size_t)n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= (int)w;
  }
}

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Start time of this process in clock ticks since boot (/proc/self/stat field 22), or 0. */
static unsigned long long start_time(void) {
  char buf[1024];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* p = strrchr(buf, ')'); /* the command name may contain anything */
  if (!p) return 0;
  int field = 2;
  for (p++; *p && field < 22; p++)
    if (*p == ' ') field++;
  return strtoull(p, NULL, 10);
}

static int usage(void) {
  fprintf(stderr, "usage: heap_fill MIB | heap_fill --emit MIB\n");
  return 2;
}

static long parse_mib(const char* s) {
  char* end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v <= 0 || v > (1L << 20)) return -1;
  return v;
}

static int emit(long mib) {
  const size_t chunk = 1u << 20;
  uint64_t* buf = malloc(chunk);
  if (!buf) return 1;
  uint64_t st = kSeed;
  for (long i = 0; i < mib; i++) {
    fill(buf, chunk / 8, &st);
    const char* p = (const char*)buf;
    size_t left = chunk;
    while (left) {
      ssize_t w = write(1, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        perror("heap_fill: write");
        return 1;
      }
      p += w;
      left -= (size_t)w;
    }
  }
  free(buf);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "--emit") == 0) {
    long mib = parse_mib(argv[2]);
    return mib < 0 ? usage() : emit(mib);
  }
  if (argc != 2) return usage();
  const long mib = parse_mib(argv[1]);
  if (mib < 0) return usage();
  const size_t bytes = (size_t)mib << 20;
  uint64_t* heap = malloc(bytes);
  if (!heap) {
    fprintf(stderr, "heap_fill: cannot allocate %ld MiB\n", mib);
    return 1;
  }
  uint64_t st = kSeed;
  fill(heap, bytes / 8, &st);
  pid_t pid = getpid();
  unsigned long long started = start_time();
  say("ready pid=%d mib=%ld addr=%p\n", (int)pid, mib, (void*)heap);

  for (;;) {
    struct timespec nap = {0, 1000 * 1000};
    nanosleep(&nap, NULL); /* EINTR (checkpoint quiesce signal) just ends the nap early */
    pid_t now = getpid();
    unsigned long long st_now = start_time();
    if (now == pid && st_now == started) continue;
    uint64_t t = realtime_ns();
    say("running pid=%d was=%d t_ns=%" PRIu64 "\n", (int)now, (int)pid, t);
    pid = now;
    started = st_now;
    uint64_t cs = kSeed;
    size_t bad = check(heap, bytes / 8, &cs);
    if (bad == bytes / 8)
      say("verified ok\n");
    else
      say("verified BAD at offset %zu\n", bad * 8);
  }
}
