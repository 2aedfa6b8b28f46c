// Reader and validator of process images (see image_reader.h). The rules here are the
// contract between the writer and the restorer: anything the restorer would act on
// (addresses, sizes, offsets, counts, strings) is range-checked, and every byte of the
// file is either under a checksum or required to be zero, so any corruption is refused.
#include "crs/image_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "crs/skip_reasons.h"

namespace ocr {

static_assert(sizeof(ocr_image_header) <= OCR_HEADER_AREA, "header must fit its area");

namespace {

// x86_64 with 4-level paging; 5-level user space is only handed out on request (mmap
// hints above this), which the runtime does not support.
constexpr uint64_t kUserSpaceEnd = 0x800000000000ull;
// Far above any real process (1 GiB of records is ~30M runs) but keeps a hostile header
// from making us allocate the whole file size.
constexpr uint64_t kMaxRecordsSize = 1ull << 30;
// 1 MiB reads measured ~9 GB/s hash+copy from page cache here; pread instead of mmap so
// a file truncated under us yields an error, not SIGBUS.
constexpr size_t kIoBufferSize = 1u << 20;
constexpr uint64_t kKnownHeaderFlags = OCR_HDR_INCREMENTAL | OCR_HDR_HAVE_MM_MAP;
constexpr uint32_t kKnownThreadFlags = OCR_THREAD_MAIN | OCR_THREAD_RUNTIME;
constexpr uint32_t kKnownRegionFlags =
    OCR_REGION_GROWSDOWN | OCR_REGION_HEAP | OCR_REGION_STACK | OCR_REGION_TRACKED;
constexpr uint32_t kKnownFileFlags = OCR_FILE_ELF;
constexpr uint32_t kProtMask = PROT_READ | PROT_WRITE | PROT_EXEC;

using ull = unsigned long long;

__attribute__((format(printf, 1, 2))) std::string strf(const char* fmt, ...) {
  char small[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return fmt;
  if (static_cast<size_t>(n) < sizeof small) return std::string(small, n);
  std::string out(n, '\0');
  va_start(ap, fmt);
  vsnprintf(out.data(), out.size() + 1, fmt, ap);
  va_end(ap);
  return out;
}

const char* record_type_name(uint32_t type) {
  switch (type) {
    case OCR_REC_PROCESS:
      return "PROCESS";
    case OCR_REC_SIGACTIONS:
      return "SIGACTIONS";
    case OCR_REC_THREAD:
      return "THREAD";
    case OCR_REC_FILE:
      return "FILE";
    case OCR_REC_REGION:
      return "REGION";
    case OCR_REC_RUNS:
      return "RUNS";
    case OCR_REC_FD:
      return "FD";
    case OCR_REC_END:
      return "END";
  }
  return "unknown";
}

bool is_page_aligned(uint64_t v) {
  return (v & (OCR_PAGE_SIZE - 1)) == 0;
}

// Reads exactly len bytes; a short read means the file shrank while we read it.
bool pread_full(int fd, void* buf, size_t len, uint64_t off, std::string* why) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = pread(fd, p, len, static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      *why = strf("read error at offset %llu: %s", static_cast<ull>(off), strerror(errno));
      return false;
    }
    if (n == 0) {
      *why = strf("file shrank while being read (end at offset %llu)", static_cast<ull>(off));
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
    off += static_cast<uint64_t>(n);
  }
  return true;
}

bool has_nul(const std::string& s) {
  return s.find('\0') != std::string::npos;
}

struct FreeDeleter {
  void operator()(void* p) const { free(p); }
};

class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// A page run located in the data section; used to check that the runs tile the section
// and to verify their checksums in file order.
struct DataSpan {
  uint64_t offset, bytes, addr, hash;
};

class Validator {
 public:
  Validator(const std::string& path, const ReadOptions& opt, Image* img)
      : path_(path), opt_(opt), img_(img) {}

  bool run(std::string* error) {
    if (!validate()) {
      *error = path_ + ": " + why_;
      return false;
    }
    return true;
  }

 private:
  bool fail(std::string why) {
    why_ = std::move(why);
    return false;
  }

  bool validate();
  bool check_header();
  bool check_sections();
  bool parse_records(const uint8_t* rec, uint64_t size);
  bool parse_process(uint64_t at, const uint8_t* p, uint64_t size);
  bool parse_thread(uint64_t at, const uint8_t* p, uint64_t size);
  bool parse_file(uint64_t at, const uint8_t* p, uint64_t size);
  bool parse_region(uint64_t at, const uint8_t* p, uint64_t size);
  bool parse_runs(uint64_t at, const uint8_t* p, uint64_t size);
  bool parse_fd(uint64_t at, const uint8_t* p, uint64_t size);
  bool check_cross_references();
  bool check_gaps();
  bool check_zero(uint64_t off, uint64_t len);
  bool verify_page_data();

  std::string region_name(const ocr_region_record& r) const {
    return strf("region 0x%llx-0x%llx", static_cast<ull>(r.start), static_cast<ull>(r.end));
  }

  const std::string& path_;
  const ReadOptions& opt_;
  Image* img_;
  std::string why_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  uint64_t records_end_ = 0, data_end_ = 0;
  int processes_ = 0;
  int sigactions_ = 0;
  int main_threads_ = 0;
  bool end_seen_ = false;
  bool expect_runs_ = false;  // the previous record was a REGION
  uint64_t prev_region_end_ = 0;
  uint64_t run_bytes_ = 0;
  std::unordered_set<uint32_t> file_ids_;
  std::unordered_set<int32_t> fd_numbers_;
  std::vector<DataSpan> spans_;
  std::unique_ptr<uint8_t, FreeDeleter> buf_;
  size_t buf_size_ = 0;
};

bool Validator::validate() {
  int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return fail(strerror(errno));
  FdGuard guard(fd);
  fd_ = fd;
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(strerror(errno));
  if (S_ISDIR(st.st_mode)) return fail("is a directory, not an image file");
  if (!S_ISREG(st.st_mode)) return fail("not a regular file");
  if (opt_.check_owner) {
    unsigned invoker = opt_.invoker_uid >= 0 ? static_cast<unsigned>(opt_.invoker_uid) : getuid();
    std::string why;
    if (!image_owner_allowed(st.st_uid, invoker, &why)) return fail(why);
  }
  file_size_ = static_cast<uint64_t>(st.st_size);

  // Small images (and the tests' many small ones) need no 1 MiB buffer.
  buf_size_ = static_cast<size_t>(std::min<uint64_t>(
      kIoBufferSize, std::max<uint64_t>(OCR_HEADER_AREA, (file_size_ + OCR_PAGE_SIZE - 1) &
                                                             ~uint64_t{OCR_PAGE_SIZE - 1})));
  buf_.reset(static_cast<uint8_t*>(aligned_alloc(OCR_PAGE_SIZE, buf_size_)));
  if (!buf_) return fail("out of memory");

  if (!check_header() || !check_sections()) return false;

  const ocr_image_header& h = img_->header;
  std::vector<uint8_t> records(h.records_size);
  if (!pread_full(fd, records.data(), records.size(), h.records_offset, &why_)) return false;
  if (XXH3_64bits(records.data(), records.size()) != h.records_hash)
    return fail("records checksum mismatch (records section damaged)");
  if (!parse_records(records.data(), records.size())) return false;
  if (!check_cross_references() || !check_gaps()) return false;
  if (opt_.verify_data && !verify_page_data()) return false;
  return true;
}

bool Validator::check_header() {
  if (file_size_ < OCR_HEADER_AREA)
    return fail(strf("truncated: file has %llu bytes, the header area needs %u",
                     static_cast<ull>(file_size_), OCR_HEADER_AREA));
  uint8_t* area = buf_.get();
  if (!pread_full(fd_, area, OCR_HEADER_AREA, 0, &why_)) return false;
  ocr_image_header& h = img_->header;
  memcpy(&h, area, sizeof h);
  if (memcmp(h.magic, OCR_IMAGE_MAGIC, sizeof h.magic) != 0)
    return fail("not an ompi-cr image (bad magic)");
  if (h.version != OCR_IMAGE_VERSION)
    return fail(strf("unsupported image format version %u (this build reads version %u)", h.version,
                     OCR_IMAGE_VERSION));
  if (h.header_size != sizeof(ocr_image_header))
    return fail(strf("bad header size %u (expected %zu)", h.header_size, sizeof(ocr_image_header)));
  if (h.page_size != OCR_PAGE_SIZE)
    return fail(strf("unsupported page size %u (expected %u)", h.page_size, OCR_PAGE_SIZE));
  ocr_image_header copy = h;
  copy.header_hash = 0;
  if (XXH3_64bits(&copy, sizeof copy) != h.header_hash)
    return fail("header checksum mismatch (header damaged)");
  // The padding is outside the header hash; requiring zeros keeps every byte covered.
  for (size_t i = sizeof(ocr_image_header); i < OCR_HEADER_AREA; i++)
    if (area[i] != 0) return fail(strf("header padding is not zero at offset %zu", i));

  if (h.flags & ~kKnownHeaderFlags)
    return fail(strf("unknown header flags 0x%llx", static_cast<ull>(h.flags)));
  if (h.pid <= 0) return fail(strf("bad pid %d in the header", h.pid));
  if (h.nthreads < 1 || h.nthreads > OCR_MAX_THREADS)
    return fail(strf("bad thread count %u (must be 1..%u)", h.nthreads, OCR_MAX_THREADS));
  if (memchr(h.parent, 0, sizeof h.parent) == nullptr)
    return fail("parent image name is not terminated");
  if (h.flags & OCR_HDR_INCREMENTAL) {
    if (h.parent[0] == 0) return fail("incremental image names no parent image");
    if (h.chain_length < 2)
      return fail(
          strf("incremental image with chain length %u (must be at least 2)", h.chain_length));
  } else if (h.parent[0] != 0 || h.parent_hash != 0) {
    return fail("full image names a parent image");
  } else if (h.chain_length > 1) {  // 0: written before the field existed
    return fail(strf("full image with chain length %u", h.chain_length));
  }
  if (h.dirty_backend > OCR_DIRTY_HASH)
    return fail(strf("unknown dirty tracking backend %u", h.dirty_backend));
  // v1 has no compression, so the page data is exactly the saved bytes.
  if (h.saved_bytes != h.data_size)
    return fail(strf("saved_bytes %llu differs from the page data size %llu",
                     static_cast<ull>(h.saved_bytes), static_cast<ull>(h.data_size)));
  return true;
}

bool Validator::check_sections() {
  const ocr_image_header& h = img_->header;
  if (h.records_offset < OCR_HEADER_AREA)
    return fail(strf("records section at offset %llu overlaps the header area",
                     static_cast<ull>(h.records_offset)));
  if (h.records_size < sizeof(ocr_record_header))
    return fail(strf("records section too small (%llu bytes)", static_cast<ull>(h.records_size)));
  if (h.records_size > kMaxRecordsSize)
    return fail(strf("records section too large (%llu bytes)", static_cast<ull>(h.records_size)));
  if (__builtin_add_overflow(h.records_offset, h.records_size, &records_end_))
    return fail("records section out of range");
  if (records_end_ > file_size_)
    return fail(strf("truncated: records end at %llu but file has %llu bytes",
                     static_cast<ull>(records_end_), static_cast<ull>(file_size_)));
  if (!is_page_aligned(h.data_offset))
    return fail(strf("page data offset %llu is not page aligned", static_cast<ull>(h.data_offset)));
  if (!is_page_aligned(h.data_size))
    return fail(strf("page data size %llu is not a multiple of the page size",
                     static_cast<ull>(h.data_size)));
  uint64_t end = records_end_;
  if (h.data_size > 0) {
    if (__builtin_add_overflow(h.data_offset, h.data_size, &data_end_))
      return fail("page data section out of range");
    if (h.data_offset < OCR_HEADER_AREA)
      return fail(strf("page data at offset %llu overlaps the header area",
                       static_cast<ull>(h.data_offset)));
    if (data_end_ > file_size_)
      return fail(strf("truncated: page data ends at %llu but file has %llu bytes",
                       static_cast<ull>(data_end_), static_cast<ull>(file_size_)));
    if (h.data_offset < records_end_ && h.records_offset < data_end_)
      return fail(strf("records [%llu, %llu) and page data [%llu, %llu) overlap",
                       static_cast<ull>(h.records_offset), static_cast<ull>(records_end_),
                       static_cast<ull>(h.data_offset), static_cast<ull>(data_end_)));
    end = std::max(end, data_end_);
  } else {
    data_end_ = h.data_offset;
  }
  if (file_size_ > end)
    return fail(strf("%llu unexpected bytes after the end of the image (offset %llu)",
                     static_cast<ull>(file_size_ - end), static_cast<ull>(end)));
  return true;
}

bool Validator::parse_records(const uint8_t* rec, uint64_t size) {
  const uint64_t base = img_->header.records_offset;
  uint64_t pos = 0;
  while (pos < size) {
    const uint64_t at = base + pos;  // file offsets in messages: usable with a hex dump
    if (end_seen_)
      return fail(strf("record at offset %llu follows the END record", static_cast<ull>(at)));
    if (size - pos < sizeof(ocr_record_header))
      return fail(strf("record header at offset %llu cut off by the end of the records section",
                       static_cast<ull>(at)));
    ocr_record_header rh;
    memcpy(&rh, rec + pos, sizeof rh);
    const uint64_t payload = pos + sizeof rh;
    if (rh.size > size - payload)
      return fail(strf("record at offset %llu (type %u) overruns the records section",
                       static_cast<ull>(at), rh.type));
    if (rh.type < OCR_REC_PROCESS || rh.type > OCR_REC_END)
      return fail(
          strf("record at offset %llu: unknown record type %u", static_cast<ull>(at), rh.type));
    if (rh.version != 1)
      return fail(strf("record at offset %llu (%s): unsupported record version %u",
                       static_cast<ull>(at), record_type_name(rh.type), rh.version));
    const uint8_t* p = rec + payload;
    if (XXH3_64bits(p, rh.size) != rh.hash)
      return fail(strf("record at offset %llu (%s): checksum mismatch", static_cast<ull>(at),
                       record_type_name(rh.type)));
    if (expect_runs_ && rh.type != OCR_REC_RUNS)
      return fail(region_name(img_->regions.back().rec) + " is not followed by its RUNS record");
    bool ok = true;
    switch (rh.type) {
      case OCR_REC_PROCESS:
        ok = parse_process(at, p, rh.size);
        break;
      case OCR_REC_SIGACTIONS:
        if (rh.size != sizeof(ocr_sigaction_record))
          return fail(strf("record at offset %llu (SIGACTIONS): size %llu, expected %zu",
                           static_cast<ull>(at), static_cast<ull>(rh.size),
                           sizeof(ocr_sigaction_record)));
        if (++sigactions_ > 1) return fail("more than one SIGACTIONS record");
        memcpy(&img_->sigactions, p, sizeof img_->sigactions);
        img_->have_sigactions = true;
        break;
      case OCR_REC_THREAD:
        ok = parse_thread(at, p, rh.size);
        break;
      case OCR_REC_FILE:
        ok = parse_file(at, p, rh.size);
        break;
      case OCR_REC_REGION:
        ok = parse_region(at, p, rh.size);
        break;
      case OCR_REC_RUNS:
        ok = parse_runs(at, p, rh.size);
        break;
      case OCR_REC_FD:
        ok = parse_fd(at, p, rh.size);
        break;
      case OCR_REC_END:
        if (rh.size != 0)
          return fail(strf("END record at offset %llu has a payload", static_cast<ull>(at)));
        end_seen_ = true;
        break;
    }
    if (!ok) return false;
    pos = payload + rh.size;
  }
  if (expect_runs_)
    return fail(region_name(img_->regions.back().rec) + " is not followed by its RUNS record");
  if (!end_seen_) return fail("no END record (records section incomplete)");
  return true;
}

bool Validator::parse_process(uint64_t at, const uint8_t* p, uint64_t size) {
  if (++processes_ > 1) return fail("more than one PROCESS record");
  ocr_process_record& r = img_->process;
  if (size < sizeof r)
    return fail(strf("record at offset %llu (PROCESS): size %llu, expected at least %zu",
                     static_cast<ull>(at), static_cast<ull>(size), sizeof r));
  memcpy(&r, p, sizeof r);
  if (r.cwd_len > OCR_MAX_PATH || r.exe_len > OCR_MAX_PATH)
    return fail(strf("process record: bad path lengths (cwd %u, exe %u; limit %u)", r.cwd_len,
                     r.exe_len, OCR_MAX_PATH));
  if (size != sizeof r + r.cwd_len + r.exe_len)
    return fail(strf("record at offset %llu (PROCESS): size %llu != %zu (struct + cwd + exe)",
                     static_cast<ull>(at), static_cast<ull>(size),
                     sizeof r + r.cwd_len + r.exe_len));
  img_->cwd.assign(reinterpret_cast<const char*>(p + sizeof r), r.cwd_len);
  img_->exe.assign(reinterpret_cast<const char*>(p + sizeof r + r.cwd_len), r.exe_len);
  if (has_nul(img_->cwd)) return fail("process cwd contains a NUL byte");
  if (has_nul(img_->exe)) return fail("process exe path contains a NUL byte");
  if (r.umask > 0777) return fail(strf("bad umask 0%o", r.umask));
  if (r.tid_offset >= 4096 || (r.tid_offset & 3) != 0)
    return fail(strf("bad tid offset %u in the process record", r.tid_offset));
  if (r.rseq_size > 1024 || r.rseq_offset < -65536 || r.rseq_offset > 65536)
    return fail(strf("bad rseq registration (offset %d, size %u)", r.rseq_offset, r.rseq_size));
  if (r.mm.auxv_size > sizeof r.mm.auxv || r.mm.auxv_size % sizeof(uint64_t) != 0)
    return fail(strf("bad mm map auxv size %u (at most %zu, multiple of 8)", r.mm.auxv_size,
                     sizeof r.mm.auxv));
  if (r.vdso_group_end != 0 || r.vdso_start != 0 || r.vvar_start != 0) {
    if (!is_page_aligned(r.vvar_start) || !is_page_aligned(r.vdso_start) ||
        !is_page_aligned(r.vdso_group_end) || r.vdso_start >= r.vdso_group_end ||
        (r.vvar_start != 0 && r.vvar_start > r.vdso_start) || r.vdso_group_end > kUserSpaceEnd)
      return fail(strf("bad vdso location (vvar 0x%llx, vdso 0x%llx, end 0x%llx)",
                       static_cast<ull>(r.vvar_start), static_cast<ull>(r.vdso_start),
                       static_cast<ull>(r.vdso_group_end)));
  }
  return true;
}

bool Validator::parse_thread(uint64_t at, const uint8_t* p, uint64_t size) {
  if (size != sizeof(ocr_thread_record))
    return fail(strf("record at offset %llu (THREAD): size %llu, expected %zu",
                     static_cast<ull>(at), static_cast<ull>(size), sizeof(ocr_thread_record)));
  if (img_->threads.size() >= OCR_MAX_THREADS)
    return fail(strf("more than %u thread records", OCR_MAX_THREADS));
  ocr_thread_record t;
  memcpy(&t, p, sizeof t);
  if (t.flags & ~kKnownThreadFlags)
    return fail(strf("thread %d: unknown flags 0x%x", t.tid, t.flags));
  if (t.tid <= 0) return fail(strf("thread record with bad tid %d", t.tid));
  if (t.fs_base >= kUserSpaceEnd)
    return fail(strf("thread %d: thread pointer 0x%llx outside user space", t.tid,
                     static_cast<ull>(t.fs_base)));
  if (t.flags & OCR_THREAD_MAIN) main_threads_++;
  img_->threads.push_back(t);
  return true;
}

bool Validator::parse_file(uint64_t at, const uint8_t* p, uint64_t size) {
  ImageFile f;
  if (size < sizeof f.rec)
    return fail(strf("record at offset %llu (FILE): size %llu, expected at least %zu",
                     static_cast<ull>(at), static_cast<ull>(size), sizeof f.rec));
  memcpy(&f.rec, p, sizeof f.rec);
  if (f.rec.path_len == 0 || f.rec.path_len > OCR_MAX_PATH)
    return fail(
        strf("file record %u: bad path length %u (1..%u)", f.rec.id, f.rec.path_len, OCR_MAX_PATH));
  if (size != sizeof f.rec + f.rec.path_len)
    return fail(strf("record at offset %llu (FILE): size %llu != %zu (struct + path)",
                     static_cast<ull>(at), static_cast<ull>(size), sizeof f.rec + f.rec.path_len));
  f.path.assign(reinterpret_cast<const char*>(p + sizeof f.rec), f.rec.path_len);
  if (has_nul(f.path)) return fail(strf("file record %u: path contains a NUL byte", f.rec.id));
  if (f.rec.flags & ~kKnownFileFlags)
    return fail(strf("file record %u: unknown flags 0x%x", f.rec.id, f.rec.flags));
  if (f.rec.build_id_len > OCR_MAX_BUILD_ID)
    return fail(strf("file record %u: build-id length %u exceeds %u", f.rec.id, f.rec.build_id_len,
                     OCR_MAX_BUILD_ID));
  if (!file_ids_.insert(f.rec.id).second)
    return fail(strf("duplicate file record id %u", f.rec.id));
  img_->files.push_back(std::move(f));
  return true;
}

bool Validator::parse_region(uint64_t at, const uint8_t* p, uint64_t size) {
  ImageRegion reg;
  ocr_region_record& r = reg.rec;
  if (size != sizeof r)
    return fail(strf("record at offset %llu (REGION): size %llu, expected %zu",
                     static_cast<ull>(at), static_cast<ull>(size), sizeof r));
  memcpy(&r, p, sizeof r);
  const std::string name = region_name(r);
  if (!is_page_aligned(r.start) || !is_page_aligned(r.end))
    return fail(name + " is not page aligned");
  if (r.start >= r.end) return fail(name + " is empty or inverted");
  if (r.kind < OCR_REGION_ANON_PRIVATE || r.kind > OCR_REGION_SKIPPED)
    return fail(strf("%s: unknown kind %u", name.c_str(), r.kind));
  // [vsyscall] sits in the kernel half; it is recorded (skipped) for completeness only.
  const bool kernel_special = r.kind == OCR_REGION_SKIPPED && r.skip_reason == OCR_SKIP_KERNEL;
  if (r.end > kUserSpaceEnd && !kernel_special) return fail(name + " lies outside user space");
  if (r.start < prev_region_end_)
    return fail(
        strf("%s overlaps or precedes the previous region (regions must be sorted, "
             "ending at 0x%llx)",
             name.c_str(), static_cast<ull>(prev_region_end_)));
  if (r.prot & ~kProtMask) return fail(strf("%s: bad protection 0x%x", name.c_str(), r.prot));
  if (r.flags & ~kKnownRegionFlags)
    return fail(strf("%s: unknown flags 0x%x", name.c_str(), r.flags));
  if ((r.kind == OCR_REGION_FILE_PRIVATE || r.kind == OCR_REGION_FILE_SHARED) &&
      !is_page_aligned(r.file_offset))
    return fail(strf("%s: file offset %llu is not page aligned", name.c_str(),
                     static_cast<ull>(r.file_offset)));
  if (r.kind == OCR_REGION_SKIPPED && r.skip_reason >= OCR_SKIP_REASONS)
    return fail(strf("%s: unknown skip reason %u", name.c_str(), r.skip_reason));
  if ((r.kind == OCR_REGION_SKIPPED || r.kind == OCR_REGION_FILE_SHARED) && r.nruns != 0)
    return fail(strf("%s: a %s region cannot have saved pages (%u runs)", name.c_str(),
                     region_kind_name(r.kind), r.nruns));
  if (r.nruns > (r.end - r.start) / OCR_PAGE_SIZE)
    return fail(strf("%s: %u runs for %llu pages", name.c_str(), r.nruns,
                     static_cast<ull>((r.end - r.start) / OCR_PAGE_SIZE)));
  prev_region_end_ = r.end;
  img_->regions.push_back(std::move(reg));
  expect_runs_ = true;
  return true;
}

bool Validator::parse_runs(uint64_t at, const uint8_t* p, uint64_t size) {
  if (!expect_runs_)
    return fail(
        strf("RUNS record at offset %llu does not follow a REGION record", static_cast<ull>(at)));
  expect_runs_ = false;
  ImageRegion& reg = img_->regions.back();
  const ocr_region_record& r = reg.rec;
  const std::string name = region_name(r);
  if (size != uint64_t{r.nruns} * sizeof(ocr_run_record))
    return fail(strf("%s: RUNS record of %llu bytes, expected %u runs", name.c_str(),
                     static_cast<ull>(size), r.nruns));
  const ocr_image_header& h = img_->header;
  reg.runs.resize(r.nruns);
  if (size) memcpy(reg.runs.data(), p, size);
  uint64_t prev_end = r.start;
  for (const ocr_run_record& run : reg.runs) {
    const std::string rn = strf("%s: run at 0x%llx", name.c_str(), static_cast<ull>(run.addr));
    if (!is_page_aligned(run.addr)) return fail(rn + " is not page aligned");
    if (run.npages == 0) return fail(rn + " has no pages");
    if (run.addr < r.start || run.addr >= r.end || run.npages > (r.end - run.addr) / OCR_PAGE_SIZE)
      return fail(strf("%s (%llu pages) lies outside its region", rn.c_str(),
                       static_cast<ull>(run.npages)));
    if (run.addr < prev_end) return fail(rn + " overlaps or precedes the previous run");
    const uint64_t bytes = run.npages * OCR_PAGE_SIZE;  // < 2^47: no overflow
    prev_end = run.addr + bytes;
    if (run_inherited(run)) {
      // The bytes live in the parent chain; read_image_chain() checks the links.
      if (!(h.flags & OCR_HDR_INCREMENTAL))
        return fail(rn + " is inherited from a parent, but this is a full image");
      if (!(r.flags & OCR_REGION_TRACKED))
        return fail(rn + " is inherited from a parent, but its region is not tracked");
      if (run.hash != 0) return fail(rn + " is inherited from a parent but has a checksum");
      continue;
    }
    if (!is_page_aligned(run.data_offset))
      return fail(strf("%s: data offset %llu is not page aligned", rn.c_str(),
                       static_cast<ull>(run.data_offset)));
    if (h.data_size == 0 || run.data_offset < h.data_offset || run.data_offset >= data_end_ ||
        bytes > data_end_ - run.data_offset)
      return fail(strf("%s: data [%llu, +%llu) outside the page data section [%llu, %llu)",
                       rn.c_str(), static_cast<ull>(run.data_offset), static_cast<ull>(bytes),
                       static_cast<ull>(h.data_offset), static_cast<ull>(data_end_)));
    run_bytes_ += bytes;
    spans_.push_back({run.data_offset, bytes, run.addr, run.hash});
  }
  return true;
}

bool Validator::parse_fd(uint64_t at, const uint8_t* p, uint64_t size) {
  ImageFd f;
  if (size < sizeof f.rec)
    return fail(strf("record at offset %llu (FD): size %llu, expected at least %zu",
                     static_cast<ull>(at), static_cast<ull>(size), sizeof f.rec));
  memcpy(&f.rec, p, sizeof f.rec);
  if (f.rec.path_len > OCR_MAX_PATH)
    return fail(
        strf("fd %d: bad path length %u (limit %u)", f.rec.fd, f.rec.path_len, OCR_MAX_PATH));
  const uint64_t tail = f.rec.kind == OCR_FD_PIPE ? f.rec.size : 0;
  if (f.rec.kind == OCR_FD_PIPE && f.rec.size > OCR_MAX_PIPE_BYTES)
    return fail(strf("fd %d: %llu bytes buffered in a pipe (limit %u)", f.rec.fd,
                     static_cast<ull>(f.rec.size), OCR_MAX_PIPE_BYTES));
  if (size != sizeof f.rec + f.rec.path_len + tail)
    return fail(strf("record at offset %llu (FD): size %llu != %llu (struct + path + data)",
                     static_cast<ull>(at), static_cast<ull>(size),
                     static_cast<ull>(sizeof f.rec + f.rec.path_len + tail)));
  f.path.assign(reinterpret_cast<const char*>(p + sizeof f.rec), f.rec.path_len);
  f.pipe_bytes.assign(reinterpret_cast<const char*>(p + sizeof f.rec + f.rec.path_len), tail);
  if (f.rec.fd < 0) return fail(strf("fd record with negative fd %d", f.rec.fd));
  if (f.rec.kind < OCR_FD_REGULAR || f.rec.kind > OCR_FD_PIPE)
    return fail(strf("fd %d: unknown kind %u", f.rec.fd, f.rec.kind));
  if (f.rec.kind == OCR_FD_PIPE && (f.rec.offset <= 0 || f.rec.offset > (1ll << 31)))
    return fail(
        strf("fd %d: bad pipe capacity %lld", f.rec.fd, static_cast<long long>(f.rec.offset)));
  // -1 means "no offset" (terminals, pipes, sockets): any other negative value is bad.
  if (f.rec.offset < -1)
    return fail(
        strf("fd %d: negative offset %lld", f.rec.fd, static_cast<long long>(f.rec.offset)));
  if (has_nul(f.path)) return fail(strf("fd %d: path contains a NUL byte", f.rec.fd));
  if (!fd_numbers_.insert(f.rec.fd).second) return fail(strf("duplicate fd %d", f.rec.fd));
  img_->fds.push_back(std::move(f));
  return true;
}

bool Validator::check_cross_references() {
  const ocr_image_header& h = img_->header;
  if (processes_ == 0) return fail("no PROCESS record");
  if (img_->threads.size() != h.nthreads)
    return fail(strf("header says %u threads but the image has %zu thread records", h.nthreads,
                     img_->threads.size()));
  if (main_threads_ != 1)
    return fail(main_threads_ == 0
                    ? std::string("no main thread record")
                    : strf("%d thread records claim to be the main thread", main_threads_));
  for (const ImageRegion& reg : img_->regions) {
    const uint32_t k = reg.rec.kind;
    if ((k == OCR_REGION_FILE_PRIVATE || k == OCR_REGION_FILE_SHARED) &&
        !file_ids_.count(reg.rec.file_id))
      return fail(strf("%s refers to file id %u, which the image does not describe",
                       region_name(reg.rec).c_str(), reg.rec.file_id));
  }
  if (run_bytes_ != h.data_size)
    return fail(strf("page runs hold %llu bytes but the page data section has %llu",
                     static_cast<ull>(run_bytes_), static_cast<ull>(h.data_size)));
  // With the sum equal to the section size, disjoint runs tile the section exactly, so
  // the run checksums cover every data byte.
  std::sort(spans_.begin(), spans_.end(),
            [](const DataSpan& a, const DataSpan& b) { return a.offset < b.offset; });
  for (size_t i = 1; i < spans_.size(); i++)
    if (spans_[i - 1].offset + spans_[i - 1].bytes > spans_[i].offset)
      return fail(strf("page data of runs at 0x%llx and 0x%llx overlap",
                       static_cast<ull>(spans_[i - 1].addr), static_cast<ull>(spans_[i].addr)));
  return true;
}

bool Validator::check_zero(uint64_t off, uint64_t len) {
  uint8_t* b = buf_.get();
  while (len > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(len, buf_size_));
    if (!pread_full(fd_, b, n, off, &why_)) return false;
    for (size_t i = 0; i < n; i++)
      if (b[i] != 0)
        return fail(strf("non-zero byte at offset %llu outside the records and page data",
                         static_cast<ull>(off + i)));
    off += n;
    len -= n;
  }
  return true;
}

bool Validator::check_gaps() {
  // Bytes between the header area, the two sections and the end of the file are padding.
  const ocr_image_header& h = img_->header;
  struct Range {
    uint64_t begin, end;
  } used[2] = {{h.records_offset, records_end_}, {h.data_offset, data_end_}};
  if (used[1].begin < used[0].begin) std::swap(used[0], used[1]);
  uint64_t cur = OCR_HEADER_AREA;
  for (const Range& r : used) {
    if (r.begin == r.end) continue;
    if (r.begin > cur && !check_zero(cur, r.begin - cur)) return false;
    cur = std::max(cur, r.end);
  }
  return true;  // check_sections() refused anything past the last section
}

bool Validator::verify_page_data() {
  const ocr_image_header& h = img_->header;
  if (h.data_size == 0) return true;
  posix_fadvise(fd_, static_cast<off_t>(h.data_offset), static_cast<off_t>(h.data_size),
                POSIX_FADV_SEQUENTIAL);
  XXH3_state_t state;
  XXH3_INITSTATE(&state);
  uint8_t* b = buf_.get();
  size_t si = 0;
  uint64_t done = 0;  // bytes of spans_[si] hashed so far
  uint64_t off = h.data_offset;
  while (off < data_end_) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(data_end_ - off, buf_size_));
    if (!pread_full(fd_, b, n, off, &why_)) return false;
    size_t p = 0;
    while (p < n) {
      const DataSpan& s = spans_[si];
      const size_t take = static_cast<size_t>(std::min<uint64_t>(s.bytes - done, n - p));
      uint64_t digest = 0;
      bool complete = false;
      if (done == 0 && take == s.bytes) {
        digest = XXH3_64bits(b + p, take);  // common case: run inside one buffer
        complete = true;
      } else {
        if (done == 0) XXH3_64bits_reset(&state);
        XXH3_64bits_update(&state, b + p, take);
        done += take;
        if (done == s.bytes) {
          digest = XXH3_64bits_digest(&state);
          complete = true;
        }
      }
      if (complete) {
        if (digest != s.hash)
          return fail(strf("page data of run at 0x%llx corrupted (checksum mismatch)",
                           static_cast<ull>(s.addr)));
        si++;
        done = 0;
      }
      p += take;
    }
    off += n;
  }
  return true;
}

}  // namespace

const ImageFile* Image::find_file(uint32_t id) const {
  for (const ImageFile& f : files)
    if (f.rec.id == id) return &f;
  return nullptr;
}

const ocr_thread_record* Image::main_thread() const {
  for (const ocr_thread_record& t : threads)
    if (t.flags & OCR_THREAD_MAIN) return &t;
  return nullptr;
}

bool image_owner_allowed(unsigned owner, unsigned invoker, std::string* why) {
  if (invoker == 0 || owner == invoker) return true;
  if (why) *why = strf("owned by uid %u, not by you (uid %u)", owner, invoker);
  return false;
}

bool read_image(const std::string& path, const ReadOptions& opt, Image* out, std::string* error) {
  Image img;
  img.path = path;
  Validator v(path, opt, &img);
  std::string err;
  if (!v.run(&err)) {
    if (error) *error = std::move(err);
    return false;
  }
  *out = std::move(img);
  return true;
}

std::string parent_image_path(const Image& img) {
  if (!(img.header.flags & OCR_HDR_INCREMENTAL)) return "";
  const std::string parent = img.header.parent;  // NUL termination validated
  if (parent[0] == '/') return parent;
  const size_t slash = img.path.rfind('/');
  return slash == std::string::npos ? parent : img.path.substr(0, slash + 1) + parent;
}

bool read_image_chain(const std::string& path, const ReadOptions& opt, std::vector<Image>* chain,
                      std::string* error) {
  std::vector<Image> images;
  Image img;
  if (!read_image(path, opt, &img, error)) return false;
  images.push_back(std::move(img));
  // chain_length strictly decreases at each link, so this ends after at most that many
  // reads whatever the files say.
  while (images.back().header.flags & OCR_HDR_INCREMENTAL) {
    const Image& child = images.back();
    const std::string ppath = parent_image_path(child);
    Image parent;
    std::string err;
    if (!read_image(ppath, opt, &parent, &err)) {
      // err is "<ppath>: why"; say whose parent it is.
      if (error) *error = child.path + ": parent image " + err;
      return false;
    }
    const ocr_image_header& ph = parent.header;
    const ocr_image_header& ch = child.header;
    std::string why;
    if (ph.header_hash != ch.parent_hash)
      why = strf(
          "is not the image this one was taken on top of (header hash %016llx, expected "
          "%016llx)",
          static_cast<ull>(ph.header_hash), static_cast<ull>(ch.parent_hash));
    else if (std::max(ph.chain_length, 1u) + 1 != ch.chain_length)
      why = strf("has chain length %u, expected %u", ph.chain_length, ch.chain_length - 1);
    else if (ph.uid != ch.uid)
      why = strf("belongs to uid %u, this image to uid %u", ph.uid, ch.uid);
    if (!why.empty()) {
      if (error) *error = child.path + ": parent image " + ppath + " " + why;
      return false;
    }
    images.push_back(std::move(parent));
  }
  *chain = std::move(images);
  return true;
}

std::string describe_skip_reason(unsigned reason) {
  return skip_reason_name(reason);
}

const char* region_kind_name(uint32_t kind) {
  switch (kind) {
    case OCR_REGION_ANON_PRIVATE:
      return "anon-private";
    case OCR_REGION_FILE_PRIVATE:
      return "file-private";
    case OCR_REGION_FILE_SHARED:
      return "file-shared";
    case OCR_REGION_ANON_SHARED:
      return "anon-shared";
    case OCR_REGION_SKIPPED:
      return "skipped";
  }
  return "unknown";
}

const char* fd_kind_name(uint32_t kind) {
  switch (kind) {
    case OCR_FD_REGULAR:
      return "regular";
    case OCR_FD_DIRECTORY:
      return "directory";
    case OCR_FD_CHARDEV:
      return "chardev";
    case OCR_FD_UNSUPPORTED:
      return "unsupported";
    case OCR_FD_PIPE:
      return "pipe";
  }
  return "unknown";
}

std::string prot_string(uint32_t prot) {
  std::string s = "---";
  if (prot & PROT_READ) s[0] = 'r';
  if (prot & PROT_WRITE) s[1] = 'w';
  if (prot & PROT_EXEC) s[2] = 'x';
  return s;
}

}  // namespace ocr
