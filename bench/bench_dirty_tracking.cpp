// Benchmark of the dirty-page tracker (src/crs/dirty_tracker.h): what tracking costs a
// program that keeps rewriting its memory, and what a checkpoint's scan + reset costs.
//
//   bench_dirty_tracking [--size-mib N] [--rounds N] [--thp] [--backends uffd,hash,...]
//
// Table 1: a heap of N MiB (default 1024) is rewritten 10% per round (a round stands for
// one checkpoint interval); after each round the tracker scans the heap and resets, as a
// checkpoint would. "sparse" writes one word per chosen page (the worst case for
// per-page write faults), "dense" rewrites the whole page. Table 2: scan_region + reset on
// the same heap with 1%, 10%, 50% of its pages written. Plain timed main (no thresholds);
// numbers go to docs/benchmarks.md.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <memory_resource>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "crs/dirty_tracker.h"
#include "crs/proc_maps.h"
#include "crs/region_classifier.h"
#include "crs/scratch_arena.h"

namespace {

using ocr::DirtyBackend;
using ocr::DirtyTracker;
constexpr size_t kPg = 4096;

double now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct Heap {
  char* guard = nullptr;
  char* base = nullptr;
  size_t pages = 0, total = 0;
  Heap(size_t bytes, bool thp) : pages(bytes / kPg) {
    const size_t align = size_t{2} << 20;
    total = bytes + 2 * align;
    guard = static_cast<char*>(
        mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (guard == MAP_FAILED) abort();
    uintptr_t b = (reinterpret_cast<uintptr_t>(guard) + align) & ~(align - 1);
    base = static_cast<char*>(mmap(reinterpret_cast<void*>(b), bytes, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
    if (base == MAP_FAILED) abort();
    madvise(base, bytes, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    memset(base, 1, bytes);
  }
  ~Heap() { munmap(guard, total); }
};

// The tracker as a checkpoint drives it: maps from smaps, only the heap eligible.
struct Driver {
  DirtyTracker t;
  ocr::ScratchArena arena{size_t{1} << 30};
  const Heap& heap;
  explicit Driver(const Heap& h) : heap(h) {}

  std::pmr::vector<ocr::MapEntry> maps() {
    int err = 0;
    std::string_view text = ocr::read_whole_file("/proc/self/smaps", &arena, &err);
    std::pmr::vector<ocr::MapEntry> m(&arena);
    const char* perr = nullptr;
    if (ocr::parse_proc_maps(text, m, &perr) != 0) abort();
    return m;
  }
  bool in_heap(const ocr::MapEntry& m) const {
    const uint64_t b = reinterpret_cast<uintptr_t>(heap.base);
    return m.start < b + heap.pages * kPg && b < m.end;
  }
  // The writer has the maps already when it scans and resets: reading smaps (which walks
  // every page table for its Rss lines) is not the tracker's cost and is done untimed.
  std::pmr::vector<ocr::MapEntry> snapshot() {
    arena.reset();
    return maps();
  }
  int reset(const std::pmr::vector<ocr::MapEntry>& m) {
    std::pmr::vector<bool> el(m.size(), false, &arena);
    for (size_t i = 0; i < m.size(); i++)
      el[i] =
          in_heap(m[i]) && ocr::dirty_tracking_eligible(m[i], ocr::classify_region(m[i], false));
    return t.reset(m, el, &arena);
  }
  int reset() { return reset(snapshot()); }
  // Returns pages reported written (or -1 on error / not tracked).
  long scan(const std::pmr::vector<ocr::MapEntry>& m) {
    long written = 0;
    for (const ocr::MapEntry& e : m) {
      if (!in_heap(e)) continue;
      if (!t.region_tracked(e)) return -1;
      std::pmr::vector<ocr::PageRun> w(&arena), u(&arena);
      ocr::PageCounts c;
      if (t.scan_region(e, ocr::PageSelect::kPresentOrSwapped, w, u, c, &arena) != 0) return -1;
      for (const auto& r : w) written += static_cast<long>(r.npages);
    }
    return written;
  }
};

// Every rewrite stores a value never stored before, so that content hashing sees it too.
char next_value() {
  static unsigned v = 1;
  v = v % 250 + 1;
  return static_cast<char>(v + 2);
}

std::vector<size_t> pick(size_t n, size_t k, uint64_t seed) {
  std::vector<size_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < k; i++) std::swap(v[i], v[i + rng() % (n - i)]);
  v.resize(k);
  std::sort(v.begin(), v.end());  // address order, like a sweep over an array
  return v;
}

void rewrite(const Heap& h, const std::vector<size_t>& pages, bool dense, char v) {
  if (dense) {
    for (size_t p : pages) memset(h.base + p * kPg, v, kPg);
  } else {
    for (size_t p : pages) *reinterpret_cast<volatile char*>(h.base + p * kPg + (p % 512) * 8) = v;
  }
}

struct Args {
  size_t size_mib = 1024;
  int rounds = 5;
  bool thp = false;
  std::vector<DirtyBackend> backends;
};

Args parse(int argc, char** argv) {
  Args a;
  std::string list = "none,uffd,softdirty,hash";
  for (int i = 1; i < argc; i++) {
    std::string s = argv[i];
    if (s == "--size-mib" && i + 1 < argc)
      a.size_mib = strtoul(argv[++i], nullptr, 10);
    else if (s == "--rounds" && i + 1 < argc)
      a.rounds = atoi(argv[++i]);
    else if (s == "--thp")
      a.thp = true;
    else if (s == "--backends" && i + 1 < argc)
      list = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--size-mib N] [--rounds N] [--thp] [--backends a,b]\n", argv[0]);
      exit(2);
    }
  }
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t c = list.find(',', pos);
    std::string name = list.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
    DirtyBackend b;
    if (!ocr::parse_dirty_backend(name, &b)) {
      fprintf(stderr, "unknown backend %s\n", name.c_str());
      exit(2);
    }
    a.backends.push_back(b);
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  const size_t bytes = a.size_mib << 20;
  std::vector<DirtyBackend> usable;
  for (DirtyBackend b : a.backends) {
    std::string why;
    if (DirtyTracker::probe(b, &why))
      usable.push_back(b);
    else
      printf("# %s: unavailable (%s)\n", ocr::dirty_backend_name(b), why.c_str());
  }

  printf("\n## Rewriting 10%% of a %zu MiB heap per round (%d rounds, THP %s)\n\n", a.size_mib,
         a.rounds, a.thp ? "on" : "off");
  printf("| backend | pattern | round ms | vs none | checkpoint scan ms | reset ms |\n");
  printf("|---|---|---:|---:|---:|---:|\n");
  for (bool dense : {false, true}) {
    double base_round = 0;
    for (DirtyBackend b : usable) {
      Heap heap(bytes, a.thp);
      Driver d(heap);
      std::string err;
      if (!d.t.init_backend(b, &err)) {
        printf("# %s: %s\n", ocr::dirty_backend_name(b), err.c_str());
        continue;
      }
      if (b != DirtyBackend::kNone && d.reset() != 0) abort();
      double round_ms = 0, scan_ms = 0, reset_ms = 0;
      for (int r = 0; r < a.rounds; r++) {
        auto pages = pick(heap.pages, heap.pages / 10, 1000 + r);
        double t0 = now_ms();
        rewrite(heap, pages, dense, next_value());
        double t1 = now_ms();
        round_ms += t1 - t0;
        if (b == DirtyBackend::kNone) continue;
        auto m = d.snapshot();
        t1 = now_ms();
        long w = d.scan(m);
        double t2 = now_ms();
        if (d.reset(m) != 0) abort();
        double t3 = now_ms();
        if (w != static_cast<long>(pages.size())) {
          fprintf(stderr, "%s: %ld pages written, expected %zu\n", ocr::dirty_backend_name(b), w,
                  pages.size());
          return 1;
        }
        scan_ms += t2 - t1;
        reset_ms += t3 - t2;
      }
      round_ms /= a.rounds;
      if (b == DirtyBackend::kNone) base_round = round_ms;
      char vs[32] = "-";
      if (b != DirtyBackend::kNone && base_round > 0)
        snprintf(vs, sizeof vs, "%+.0f%%", (round_ms / base_round - 1) * 100);
      char sc[32] = "-", rs[32] = "-";
      if (b != DirtyBackend::kNone) {
        snprintf(sc, sizeof sc, "%.1f", scan_ms / a.rounds);
        snprintf(rs, sizeof rs, "%.1f", reset_ms / a.rounds);
      }
      printf("| %s | %s | %.1f | %s | %s | %s |\n", ocr::dirty_backend_name(b),
             dense ? "dense (whole page)" : "sparse (1 word/page)", round_ms, vs, sc, rs);
      fflush(stdout);
    }
  }

  printf("\n## scan_region + reset on a %zu MiB heap (median of %d, THP %s)\n\n", a.size_mib,
         a.rounds, a.thp ? "on" : "off");
  printf("| backend | written | scan ms | reset ms | scan+reset ms |\n");
  printf("|---|---:|---:|---:|---:|\n");
  for (DirtyBackend b : usable) {
    if (b == DirtyBackend::kNone) continue;
    Heap heap(bytes, a.thp);
    Driver d(heap);
    std::string err;
    if (!d.t.init_backend(b, &err)) continue;
    for (int pct : {1, 10, 50}) {
      std::vector<double> sc, rs;
      for (int r = 0; r < a.rounds; r++) {
        if (d.reset() != 0) abort();
        auto pages = pick(heap.pages, heap.pages * pct / 100, 77 + r);
        rewrite(heap, pages, false, next_value());
        auto m = d.snapshot();
        double t0 = now_ms();
        long w = d.scan(m);
        double t1 = now_ms();
        if (d.reset(m) != 0) abort();
        double t2 = now_ms();
        if (w != static_cast<long>(pages.size())) {
          fprintf(stderr, "%s: %ld written, expected %zu\n", ocr::dirty_backend_name(b), w,
                  pages.size());
          return 1;
        }
        sc.push_back(t1 - t0);
        rs.push_back(t2 - t1);
      }
      std::sort(sc.begin(), sc.end());
      std::sort(rs.begin(), rs.end());
      const double s = sc[sc.size() / 2], r = rs[rs.size() / 2];
      printf("| %s | %d%% | %.1f | %.1f | %.1f |\n", ocr::dirty_backend_name(b), pct, s, r, s + r);
      fflush(stdout);
    }
  }
  return 0;
}
