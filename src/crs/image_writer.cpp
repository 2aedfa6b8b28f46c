// Image writer (see image_writer.h). Runs on the agent thread with the application
// parked: every allocation goes to the arena, files are handled with raw descriptors.
#include "crs/image_writer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "crs/dirty_tracker.h"
#include "crs/file_identity.h"
#include "crs/kernel_state.h"
#include "crs/page_scan.h"
#include "crs/proc_maps.h"
#include "crs/record_buffer.h"
#include "crs/region_classifier.h"

namespace ocr {
namespace {

static_assert(sizeof(ocr_image_header) <= OCR_HEADER_AREA);
constexpr uint64_t kPage = OCR_PAGE_SIZE;
constexpr size_t kChunk = size_t{256} << 10;  // bounce buffer: fits in L2

uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) & ~(a - 1);
}

struct FileOut {
  ocr_file_record rec;
  std::string_view path;
};

struct RegionOut {
  ocr_region_record rec;
  size_t first_run;
};

// Removes excluded pages from the runs appended since `first` (they are neither saved nor
// inherited: after a restore they read as zero) and counts them per reason.
void subtract_excluded(std::pmr::vector<PageRun>& runs, std::pmr::vector<uint8_t>& inherited,
                       size_t first, const ExcludedPages* ex, int nex, uint64_t* skipped) {
  if (!nex) return;
  std::pmr::vector<PageRun> out(runs.get_allocator().resource());
  std::pmr::vector<uint8_t> out_inh(runs.get_allocator().resource());
  for (size_t i = first; i < runs.size(); i++) {
    uint64_t a = runs[i].addr, b = a + runs[i].npages * kPage;
    for (int k = 0; k < nex && a < b; k++) {
      if (ex[k].end <= a || ex[k].start >= b) continue;
      if (ex[k].start > a) {
        out.push_back({a, (ex[k].start - a) / kPage});
        out_inh.push_back(inherited[i]);
      }
      const uint64_t cut_end = ex[k].end < b ? ex[k].end : b;
      const uint64_t cut_start = ex[k].start > a ? ex[k].start : a;
      skipped[ex[k].reason] += cut_end - cut_start;
      a = cut_end;
    }
    if (a < b) {
      out.push_back({a, (b - a) / kPage});
      out_inh.push_back(inherited[i]);
    }
  }
  runs.resize(first);
  inherited.resize(first);
  runs.insert(runs.end(), out.begin(), out.end());
  inherited.insert(inherited.end(), out_inh.begin(), out_inh.end());
}

// Appends written (data) and unchanged (inherited) runs in address order.
void merge_runs(const std::pmr::vector<PageRun>& written,
                const std::pmr::vector<PageRun>& unchanged, std::pmr::vector<PageRun>& runs,
                std::pmr::vector<uint8_t>& inherited) {
  size_t i = 0, j = 0;
  while (i < written.size() || j < unchanged.size()) {
    bool take_w =
        j >= unchanged.size() || (i < written.size() && written[i].addr < unchanged[j].addr);
    runs.push_back(take_w ? written[i++] : unchanged[j++]);
    inherited.push_back(take_w ? 0 : 1);
  }
}

bool overlaps_any(uint64_t s, uint64_t e, const AddressRange* a, int n) {
  for (int i = 0; i < n; i++)
    if (s < a[i].end && a[i].start < e) return true;
  return false;
}

int pwrite_all(int fd, const void* buf, size_t len, uint64_t off) {
  const char* p = static_cast<const char*>(buf);
  while (len) {
    ssize_t w = pwrite(fd, p, len, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? -errno : -EIO;
    p += w;
    off += static_cast<uint64_t>(w);
    len -= static_cast<size_t>(w);
  }
  return 0;
}

// Writes one run of the process's own memory at `off`, returning its hash. Each chunk is
// first copied into a small bounce buffer that stays in cache, and hashed and written from
// there: memory that still changes while it is saved (the agent's own stack, threads the
// runtime does not park) then still yields a run whose checksum matches its bytes.
// Memory the process cannot read itself (PROT_NONE, write-only) comes through
// /proc/self/mem, which ignores page protections.
int write_run(int fd, int memfd, char* bounce, uint64_t addr, uint64_t len, bool readable,
              uint64_t off, uint64_t* hash) {
  XXH3_state_t st;
  XXH3_64bits_reset(&st);
  for (uint64_t done = 0; done < len;) {
    size_t n = static_cast<size_t>(len - done < kChunk ? len - done : kChunk);
    if (readable) {
      memcpy(bounce, reinterpret_cast<const void*>(addr + done), n);
    } else {
      ssize_t r = pread(memfd, bounce, n, static_cast<off_t>(addr + done));
      if (r != static_cast<ssize_t>(n)) return r < 0 ? -errno : -EIO;
    }
    XXH3_64bits_update(&st, bounce, n);
    int e = pwrite_all(fd, bounce, n, off + done);
    if (e) return e;
    done += n;
  }
  *hash = XXH3_64bits_digest(&st);
  return 0;
}

void fail_msg(ImageWriteResult* res, const char* what, const char* path, int err) {
  snprintf(res->message, sizeof res->message, "%s %s: %s", what, path ? path : "",
           strerror(err < 0 ? -err : err));
}

// Finds or adds the identity record of the file behind a mapping. Returns its id, or
// -1 if the file at that path is no longer the one mapped (then the caller saves bytes).
int file_id_for(const MapEntry& m, std::pmr::vector<FileOut>& files,
                std::pmr::memory_resource* mr) {
  const uint64_t dev = makedev(m.dev_major, m.dev_minor);
  for (const FileOut& f : files)
    if (f.rec.dev == dev && f.rec.ino == m.inode) return static_cast<int>(f.rec.id);
  int fd = open(m.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  FileOut f{};
  int e = capture_file_identity(fd, &f.rec);
  close(fd);
  if (e || f.rec.dev != dev || f.rec.ino != m.inode) return -1;
  char* p = static_cast<char*>(mr->allocate(m.path.size(), 1));
  memcpy(p, m.path.data(), m.path.size());
  f.path = std::string_view(p, m.path.size());
  f.rec.id = static_cast<uint32_t>(files.size());
  f.rec.path_len = static_cast<uint32_t>(f.path.size());
  files.push_back(f);
  return static_cast<int>(f.rec.id);
}

}  // namespace

int write_image(std::pmr::memory_resource* mr, const ImageWriteSpec& spec, ImageWriteResult* res) {
  // Kernel state first, before this function opens descriptors of its own.
  std::pmr::vector<CapturedFd> fds(mr);
  if (int e = capture_fds(mr, spec.runtime_fds, spec.nfds, fds)) {
    fail_msg(res, "cannot list open files", "/proc/self/fd", e);
    return -1;
  }
  ocr_process_record proc{};
  proc.umask = capture_umask();
  proc.personality = capture_personality();
  proc.tid_offset = spec.tid_offset;
  proc.rseq_offset = spec.rseq_offset;
  proc.rseq_size = spec.rseq_size;
  proc.rseq_sig = spec.rseq_sig;
  proc.restore_info_addr = spec.restore_info_addr;
  const bool have_mm = capture_mm_map(&proc.mm) == 0;
  std::string_view cwd = capture_proc_link("cwd", mr);
  std::string_view exe = capture_proc_link("exe", mr);
  proc.cwd_len = static_cast<uint32_t>(cwd.size());
  proc.exe_len = static_cast<uint32_t>(exe.size());
  auto* sigs = static_cast<ocr_sigaction_record*>(mr->allocate(sizeof(ocr_sigaction_record), 8));
  capture_sigactions(sigs);

  int err = 0;
  std::string_view smaps = read_whole_file("/proc/self/smaps", mr, &err);
  if (smaps.empty()) {
    fail_msg(res, "cannot read", "/proc/self/smaps", err ? err : EIO);
    return -1;
  }
  std::pmr::vector<MapEntry> maps(mr);
  const char* perr = nullptr;
  if (parse_proc_maps(smaps, maps, &perr) != 0) {
    snprintf(res->message, sizeof res->message, "cannot parse /proc/self/smaps: %s",
             perr ? perr : "?");
    return -1;
  }

  PageScanner scanner;
  if (int e = scanner.open_self()) {
    fail_msg(res, "cannot open", "/proc/self/pagemap", e);
    return -1;
  }
  std::pmr::vector<RegionOut> regions(mr);
  std::pmr::vector<PageRun> runs(mr);
  std::pmr::vector<uint8_t> inherited(mr);  // parallel to runs
  std::pmr::vector<FileOut> files(mr);
  std::pmr::vector<bool> eligible(mr);  // parallel to maps: dirty tracking may follow it
  std::pmr::vector<PageRun> written(mr), unchanged(mr);
  DirtyTracker* tracker = spec.tracker;
  const bool incremental = spec.incremental && tracker && tracker->armed();
  if (spec.incremental && !incremental) {
    snprintf(res->message, sizeof res->message,
             "no incremental image possible: dirty tracking is not armed");
    return -1;
  }
  regions.reserve(maps.size());
  eligible.reserve(maps.size());
  for (const MapEntry& m : maps) {
    const uint64_t len = m.end - m.start;
    RegionClass c =
        classify_region(m, overlaps_any(m.start, m.end, spec.runtime_areas, spec.nareas));
    if (c.kind != OCR_REGION_SKIPPED &&
        overlaps_any(m.start, m.end, spec.mpi_runtime_areas, spec.nmpi_areas)) {
      c.kind = OCR_REGION_SKIPPED;
      c.skip_reason = OCR_SKIP_MPI_RUNTIME;
      c.needs_file = false;
    }
    RegionOut r{};
    r.rec.start = m.start;
    r.rec.end = m.end;
    r.rec.prot = m.prot;
    r.rec.kind = c.kind;
    r.rec.flags = c.flags;
    r.rec.file_offset = m.offset;
    r.rec.skip_reason = OCR_SKIP_REASONS;
    r.first_run = runs.size();
    if (m.path == "[vvar]" || m.path == "[vvar_vclock]" || m.path == "[vdso]") {
      if (!proc.vvar_start || m.start < proc.vvar_start) proc.vvar_start = m.start;
      if (m.path == "[vdso]") {
        proc.vdso_start = m.start;
        proc.vdso_group_end = m.end;
        proc.vdso_hash = XXH3_64bits(reinterpret_cast<const void*>(m.start), len);
      }
    }
    if (c.needs_file) {
      int id = file_id_for(m, files, mr);
      if (id < 0) {
        // The file at that path is not the mapped one any more: keep the bytes instead.
        // Untouched pages of that file cannot be read back later either: ask mincore.
        c.kind = m.shared ? OCR_REGION_ANON_SHARED : OCR_REGION_ANON_PRIVATE;
        c.select = PageSelect::kPresentOrResident;
        r.rec.kind = c.kind;
      } else {
        r.rec.file_id = static_cast<uint32_t>(id);
      }
    }
    eligible.push_back(tracker && dirty_tracking_eligible(m, c));
    if (c.kind == OCR_REGION_SKIPPED) {
      r.rec.skip_reason = c.skip_reason;
      res->skipped[c.skip_reason] += len;
    } else if (c.kind == OCR_REGION_FILE_SHARED) {
      res->skipped[OCR_SKIP_SHARED_FILE] += len;
    } else {
      PageCounts pc;
      bool whole = true;
      if (incremental && eligible.back() && tracker->region_tracked(m)) {
        written.clear();
        unchanged.clear();
        int e = tracker->scan_region(m, c.select, written, unchanged, pc, mr);
        if (e == 0) {
          merge_runs(written, unchanged, runs, inherited);
          r.rec.flags |= OCR_REGION_TRACKED;
          whole = false;
        } else if (e != -ESTALE) {  // ESTALE: not tracked after all, saved whole below
          fail_msg(res, "cannot read the dirty pages of", m.path.c_str(), e);
          tracker->invalidate();
          return -1;
        }
        if (whole) pc = PageCounts{};
      }
      if (whole) {
        if (int e = scanner.scan(m.start, m.end, c.select, runs, pc)) {
          fail_msg(res, "cannot read the page map of", m.path.c_str(), e);
          return -1;
        }
      }
      inherited.resize(runs.size(), 0);
      subtract_excluded(runs, inherited, r.first_run, spec.excluded, spec.nexcluded, res->skipped);
      for (size_t k = r.first_run; k < runs.size(); k++)
        if (inherited[k]) res->skipped[OCR_SKIP_UNCHANGED] += runs[k].npages * kPage;
      if (c.kind == OCR_REGION_FILE_PRIVATE)
        res->skipped[OCR_SKIP_CLEAN_FILE] += (pc.file_clean + pc.absent) * kPage;
      else
        res->skipped[OCR_SKIP_UNTOUCHED] += pc.absent * kPage;
      res->skipped[OCR_SKIP_ZERO] += pc.zero * kPage;
    }
    r.rec.nruns = static_cast<uint32_t>(runs.size() - r.first_run);
    regions.push_back(r);
  }

  // Layout: header page, records, then page data on a page boundary. The records'
  // size is known before the data is written; their content (hashes) only after.
  size_t records_size = 0;
  const size_t rh = sizeof(ocr_record_header);
  records_size += rh + sizeof proc + cwd.size() + exe.size();
  records_size += rh + sizeof(ocr_sigaction_record);
  records_size += spec.nthreads * (rh + sizeof(ocr_thread_record));
  for (const FileOut& f : files) records_size += rh + sizeof f.rec + f.path.size();
  records_size += regions.size() * (2 * rh + sizeof(ocr_region_record));
  records_size += runs.size() * sizeof(ocr_run_record);
  for (const CapturedFd& f : fds) records_size += rh + sizeof f.rec + f.path.size() + f.data.size();
  records_size += rh;
  const uint64_t data_offset = align_up(OCR_HEADER_AREA + records_size, kPage);

  int fd = open(spec.tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    fail_msg(res, "cannot create", spec.tmp_path, errno);
    return -1;
  }
  int memfd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
  char* bounce = static_cast<char*>(mr->allocate(kChunk, kPage));
  auto abort_write = [&](const char* what, const char* path, int e) {
    fail_msg(res, what, path, e);
    if (tracker) tracker->invalidate();
    close(fd);
    if (memfd >= 0) close(memfd);
    unlink(spec.tmp_path);
    return -1;
  };

  std::pmr::vector<ocr_run_record> run_recs(mr);
  run_recs.resize(runs.size());
  uint64_t off = data_offset;
  for (const RegionOut& r : regions) {
    const bool readable = r.rec.prot & PROT_READ;
    for (size_t k = 0; k < r.rec.nruns; k++) {
      const PageRun& pr = runs[r.first_run + k];
      ocr_run_record& rr = run_recs[r.first_run + k];
      rr.addr = pr.addr;
      rr.npages = pr.npages;
      if (inherited[r.first_run + k]) {
        rr.data_offset = OCR_RUN_INHERITED;
        rr.hash = 0;
        continue;
      }
      rr.data_offset = off;
      const uint64_t len = pr.npages * kPage;
      int e = write_run(fd, memfd, bounce, pr.addr, len, readable || memfd < 0, off, &rr.hash);
      if (e) return abort_write("cannot write", spec.tmp_path, e);
      off += len;
    }
  }
  const uint64_t data_size = off - data_offset;

  RecordBuffer rec(mr);
  rec.add(OCR_REC_PROCESS, &proc, sizeof proc, cwd, exe);
  rec.add(OCR_REC_SIGACTIONS, sigs, sizeof *sigs);
  for (uint32_t i = 0; i < spec.nthreads; i++)
    rec.add(OCR_REC_THREAD, &spec.threads[i], sizeof(ocr_thread_record));
  for (const FileOut& f : files) rec.add(OCR_REC_FILE, &f.rec, sizeof f.rec, f.path);
  for (const RegionOut& r : regions) {
    rec.add(OCR_REC_REGION, &r.rec, sizeof r.rec);
    rec.add(OCR_REC_RUNS, run_recs.data() + r.first_run, r.rec.nruns * sizeof(ocr_run_record));
  }
  for (const CapturedFd& f : fds) rec.add(OCR_REC_FD, &f.rec, sizeof f.rec, f.path, f.data);
  rec.add(OCR_REC_END, nullptr, 0);
  if (rec.size() != records_size) return abort_write("internal: record size mismatch", "", EINVAL);

  ocr_image_header h{};
  memcpy(h.magic, OCR_IMAGE_MAGIC, 8);
  h.version = OCR_IMAGE_VERSION;
  h.header_size = sizeof h;
  h.flags = have_mm ? OCR_HDR_HAVE_MM_MAP : 0;
  h.page_size = OCR_PAGE_SIZE;
  h.uid = getuid();
  h.pid = getpid();
  h.nthreads = spec.nthreads;
  h.seq = spec.seq;
  h.chain_length = incremental ? spec.parent_chain_length + 1 : 1;
  h.dirty_backend =
      incremental ? static_cast<uint32_t>(tracker->backend()) : uint32_t{OCR_DIRTY_NONE};
  if (incremental) {
    h.flags |= OCR_HDR_INCREMENTAL;
    h.parent_hash = spec.parent_hash;
    snprintf(h.parent, sizeof h.parent, "%s", spec.parent);
  }
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  h.created_ns =
      static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  h.records_offset = OCR_HEADER_AREA;
  h.records_size = records_size;
  h.records_hash = XXH3_64bits(rec.data(), rec.size());
  h.data_offset = data_offset;
  h.data_size = data_size;
  h.xfeatures = cpu_xfeatures();
  h.xsave_size = cpu_xsave_size();
  for (unsigned i = 0; i < OCR_SKIP_REASONS; i++) h.skipped_bytes[i] = res->skipped[i];
  h.saved_bytes = data_size;
  h.header_hash = 0;
  h.header_hash = XXH3_64bits(&h, sizeof h);

  if (int e = pwrite_all(fd, rec.data(), rec.size(), OCR_HEADER_AREA))
    return abort_write("cannot write", spec.tmp_path, e);
  // The header page is written whole so that the file has no hole before the records.
  char* page = static_cast<char*>(mr->allocate(OCR_HEADER_AREA, kPage));
  memset(page, 0, OCR_HEADER_AREA);
  memcpy(page, &h, sizeof h);
  if (int e = pwrite_all(fd, page, OCR_HEADER_AREA, 0))
    return abort_write("cannot write", spec.tmp_path, e);
  if (ftruncate(fd, static_cast<off_t>(data_offset + data_size)) != 0 || fsync(fd) != 0)
    return abort_write("cannot flush", spec.tmp_path, errno);
  close(fd);
  if (memfd >= 0) close(memfd);
  if (rename(spec.tmp_path, spec.final_path) != 0) {
    int e = errno;
    unlink(spec.tmp_path);
    if (tracker) tracker->invalidate();
    fail_msg(res, "cannot commit", spec.final_path, e);
    return -1;
  }
  int dfd = open(spec.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  res->saved_bytes = data_size;
  res->regions = regions.size();
  res->runs = runs.size();
  res->header_hash = h.header_hash;
  res->chain_length = h.chain_length;
  // From this image on, follow what the application writes. Pages this image did not
  // save on request must count as written next time: no parent holds them.
  if (tracker && tracker->backend() != DirtyBackend::kNone) {
    auto* not_saved = static_cast<DirtyRange*>(
        mr->allocate(sizeof(DirtyRange) * (spec.nexcluded + 1), alignof(DirtyRange)));
    for (int i = 0; i < spec.nexcluded; i++)
      not_saved[i] = {spec.excluded[i].start, spec.excluded[i].end};
    if (tracker->reset(maps, eligible, mr, not_saved, static_cast<size_t>(spec.nexcluded)) == 0)
      res->tracker_armed = tracker->armed();
    else
      tracker->invalidate();
  }
  return 0;
}

}  // namespace ocr
