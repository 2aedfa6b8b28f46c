// Test-side builder of synthetic process images (format v1). It produces a *valid* image
// with correct checksums from an editable model, so a test can change exactly one thing
// (a model field, a raw record, a byte of the assembled file, with or without re-hashing)
// and check that the reader refuses it for the right reason.
//
//   ImageBuilder b;                       // default model: see ImageBuilder()
//   b.regions[2].rec.prot = 0x10;         // semantic change, hashes stay right
//   auto bytes = b.build();
//   write_file(path, bytes);
//
//   ImageParts parts = b.parts();        // raw records + data, for structural changes
//   parts.records.pop_back();             // drop END
//   auto bytes2 = assemble(parts);
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "crs/image_format.h"

namespace ocr::test {

struct RawRecord {
  uint32_t type = 0;
  uint32_t version = 1;
  std::vector<uint8_t> payload;
  bool fix_hash = true;  // false: use `hash` as given (to test a wrong record checksum)
  uint64_t hash = 0;
};

// An image before assembly: header fields the model decides, records, page data.
struct ImageParts {
  ocr_image_header header{};
  std::vector<RawRecord> records;
  std::vector<uint8_t> data;  // page data section, placed at data_offset
  uint64_t data_offset = 0;   // absolute; run records already point into it
};

inline uint64_t align_page(uint64_t v) {
  return (v + OCR_PAGE_SIZE - 1) & ~uint64_t{OCR_PAGE_SIZE - 1};
}

template <class T>
std::vector<uint8_t> bytes_of(const T& v) {
  std::vector<uint8_t> out(sizeof v);
  memcpy(out.data(), &v, sizeof v);
  return out;
}

inline void append_bytes(std::vector<uint8_t>* out, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  out->insert(out->end(), b, b + n);
}

inline uint64_t records_size_of(const std::vector<RawRecord>& recs) {
  uint64_t n = 0;
  for (const RawRecord& r : recs) n += sizeof(ocr_record_header) + r.payload.size();
  return n;
}

inline void set_header_hash(ocr_image_header* h) {
  h->header_hash = 0;
  h->header_hash = XXH3_64bits(h, sizeof *h);
}

// Header at 0, records at 4096, page data at parts.data_offset; fills the section fields
// and every checksum (except records with fix_hash = false).
inline std::vector<uint8_t> assemble(const ImageParts& parts) {
  std::vector<uint8_t> rec;
  for (const RawRecord& r : parts.records) {
    ocr_record_header rh{};
    rh.type = r.type;
    rh.version = r.version;
    rh.size = r.payload.size();
    rh.hash = r.fix_hash ? XXH3_64bits(r.payload.data(), r.payload.size()) : r.hash;
    append_bytes(&rec, &rh, sizeof rh);
    append_bytes(&rec, r.payload.data(), r.payload.size());
  }
  ocr_image_header h = parts.header;
  h.records_offset = OCR_HEADER_AREA;
  h.records_size = rec.size();
  h.records_hash = XXH3_64bits(rec.data(), rec.size());
  h.data_offset = parts.data_offset;
  h.data_size = parts.data.size();
  set_header_hash(&h);
  if (!parts.data.empty() && OCR_HEADER_AREA + rec.size() > parts.data_offset)
    throw std::logic_error("image_builder: records grew into the page data");
  std::vector<uint8_t> out(OCR_HEADER_AREA + rec.size());
  memcpy(out.data(), &h, sizeof h);
  memcpy(out.data() + OCR_HEADER_AREA, rec.data(), rec.size());
  if (!parts.data.empty()) {
    out.resize(parts.data_offset, 0);
    append_bytes(&out, parts.data.data(), parts.data.size());
  }
  return out;
}

class ImageBuilder {
 public:
  struct File {
    ocr_file_record rec{};
    std::string path;
  };
  struct Run {
    uint64_t addr = 0;
    uint64_t npages = 0;
    uint8_t seed = 0;        // page content is a pattern derived from seed and the address
    bool inherited = false;  // incremental: bytes are in the parent (OCR_RUN_INHERITED)
  };
  struct Region {
    ocr_region_record rec{};
    std::vector<Run> runs;  // rec.nruns is set from this unless keep_nruns
    bool keep_nruns = false;
  };
  struct Fd {
    ocr_fd_record rec{};
    std::string path;
  };

  ocr_image_header header{};
  ocr_process_record process{};
  std::string cwd = "/home/user/work", exe = "/usr/bin/app";
  ocr_sigaction_record sigactions{};
  bool with_sigactions = true;
  std::vector<ocr_thread_record> threads;
  std::vector<File> files;
  std::vector<Region> regions;
  std::vector<Fd> fds;
  bool auto_nthreads = true;    // header.nthreads = threads.size()
  uint64_t extra_data_gap = 0;  // bytes of zero padding between records and page data

  // A small plausible process: a program text+data, a heap, a stack, the kernel's vdso
  // group and [vsyscall] (skipped), a shared file mapping; about 80 KiB of page data.
  ImageBuilder() {
    memcpy(header.magic, OCR_IMAGE_MAGIC, sizeof header.magic);
    header.version = OCR_IMAGE_VERSION;
    header.header_size = sizeof(ocr_image_header);
    header.page_size = OCR_PAGE_SIZE;
    header.uid = getuid();
    header.pid = 4242;
    header.seq = 1;
    header.chain_length = 1;
    header.created_ns = 1700000000123456789ull;
    header.xfeatures = 0x2e7;
    header.xsave_size = 2696;
    header.skipped_bytes[OCR_SKIP_UNTOUCHED] = 1 << 20;
    header.skipped_bytes[OCR_SKIP_CLEAN_FILE] = 4096;
    header.skipped_bytes[OCR_SKIP_KERNEL] = 5 * 4096;

    process.umask = 022;
    process.tid_offset = 720;
    process.rseq_offset = 2336;
    process.rseq_size = 32;
    process.rseq_sig = 0x53053053;
    process.vvar_start = 0x7ff100000000;
    process.vdso_start = 0x7ff100003000;
    process.vdso_group_end = 0x7ff100005000;
    process.mm.start_code = 0x400000;
    process.mm.end_code = 0x401000;
    process.mm.start_brk = process.mm.brk = 0x1000000;
    process.mm.auxv_size = 4 * sizeof(uint64_t);
    process.mm.auxv[0] = 6;  // AT_PAGESZ
    process.mm.auxv[1] = 4096;

    sigactions.act[SIGINT - 1].handler = 0x400123;

    ocr_thread_record t{};
    t.tid = 4242;
    t.flags = OCR_THREAD_MAIN;
    t.fs_base = 0x7ff000100000;
    t.ctx.rsp = 0x7ff000020f00;
    t.ctx.rip = 0x400100;
    threads.push_back(t);

    File f;
    f.rec.id = 1;
    f.rec.flags = OCR_FILE_ELF;
    f.rec.dev = 0x801;
    f.rec.ino = 1234;
    f.rec.size = 12345;
    f.rec.mtime_sec = 1690000000;
    f.rec.mtime_nsec = 5;
    f.rec.mode = 0100755;
    f.rec.build_id_len = 20;
    for (int i = 0; i < 20; i++) f.rec.build_id[i] = static_cast<uint8_t>(i * 7);
    f.path = exe;
    files.push_back(f);
    File shm;
    shm.rec.id = 2;
    shm.rec.mode = 0100644;
    shm.rec.size = 8192;
    shm.path = "/dev/shm/app-data";
    files.push_back(shm);

    add_region(0x400000, 0x401000, PROT_READ | PROT_EXEC, OCR_REGION_FILE_PRIVATE, 0, 1, 0);
    add_region(0x401000, 0x403000, PROT_READ | PROT_WRITE, OCR_REGION_FILE_PRIVATE, 0, 1, 0x1000)
        .runs = {{0x402000, 1, 1}};
    add_region(0x1000000, 0x1010000, PROT_READ | PROT_WRITE, OCR_REGION_ANON_PRIVATE,
               OCR_REGION_HEAP, 0, 0)
        .runs = {{0x1000000, 4, 2}, {0x1008000, 3, 3}};
    add_region(0x7ff000000000, 0x7ff000021000, PROT_READ | PROT_WRITE, OCR_REGION_ANON_PRIVATE,
               OCR_REGION_STACK | OCR_REGION_GROWSDOWN, 0, 0)
        .runs = {{0x7ff000011000, 12, 4}};
    add_region(0x7ff000100000, 0x7ff000102000, PROT_READ | PROT_WRITE, OCR_REGION_FILE_SHARED, 0, 2,
               0);
    Region& vvar =
        add_region(0x7ff100000000, 0x7ff100005000, PROT_READ, OCR_REGION_SKIPPED, 0, 0, 0);
    vvar.rec.skip_reason = OCR_SKIP_KERNEL;
    Region& vsys = add_region(0xffffffffff600000ull, 0xffffffffff601000ull, PROT_EXEC,
                              OCR_REGION_SKIPPED, 0, 0, 0);
    vsys.rec.skip_reason = OCR_SKIP_KERNEL;

    Fd fd;
    fd.rec.fd = 3;
    fd.rec.kind = OCR_FD_REGULAR;
    fd.rec.flags = O_RDWR;
    fd.rec.offset = 100;
    fd.rec.size = 200;
    fd.path = "/tmp/app-output.txt";
    fds.push_back(fd);
  }

  Region& add_region(uint64_t start, uint64_t end, uint32_t prot, uint32_t kind, uint32_t flags,
                     uint32_t file_id, uint64_t file_offset) {
    Region r;
    r.rec.start = start;
    r.rec.end = end;
    r.rec.prot = prot;
    r.rec.kind = kind;
    r.rec.flags = flags;
    r.rec.file_id = file_id;
    r.rec.file_offset = file_offset;
    regions.push_back(r);
    return regions.back();
  }

  static uint8_t page_byte(const Run& run, uint64_t i) {
    return static_cast<uint8_t>(run.seed * 31 + (i >> 4) + (i * 13));
  }

  // Records in canonical order (PROCESS, SIGACTIONS, THREADs, FILEs, REGION+RUNS..., FDs,
  // END) plus the page data they point into.
  ImageParts parts() const {
    ImageParts p;
    p.header = header;
    if (auto_nthreads) p.header.nthreads = static_cast<uint32_t>(threads.size());
    // Size first: run records have a fixed size, so the data offset is known before the
    // run records are filled in.
    std::vector<RawRecord> recs = make_records(0);
    p.data_offset = align_page(OCR_HEADER_AREA + records_size_of(recs)) + extra_data_gap;
    p.records = make_records(p.data_offset);
    for (const Region& r : regions)
      for (const Run& run : r.runs)
        for (uint64_t i = 0; !run.inherited && i < run.npages * OCR_PAGE_SIZE; i++)
          p.data.push_back(page_byte(run, i));
    p.header.saved_bytes = p.data.size();
    return p;
  }

  std::vector<uint8_t> build() const { return assemble(parts()); }

  // Turns this into an incremental image on top of `parent_bytes` (an assembled image),
  // named `parent_name` relative to this image's directory (or absolute).
  void make_incremental_of(const std::vector<uint8_t>& parent_bytes,
                           const std::string& parent_name) {
    ocr_image_header ph;
    memcpy(&ph, parent_bytes.data(), sizeof ph);
    header.flags |= OCR_HDR_INCREMENTAL;
    header.parent_hash = ph.header_hash;
    header.chain_length = (ph.chain_length ? ph.chain_length : 1) + 1;
    header.dirty_backend = OCR_DIRTY_UFFD_WP;
    header.seq = ph.seq + 1;
    memset(header.parent, 0, sizeof header.parent);
    memcpy(header.parent, parent_name.data(),
           std::min(parent_name.size(), sizeof header.parent - 1));
  }

 private:
  std::vector<RawRecord> make_records(uint64_t data_offset) const {
    std::vector<RawRecord> recs;
    {
      ocr_process_record pr = process;
      pr.cwd_len = static_cast<uint32_t>(cwd.size());
      pr.exe_len = static_cast<uint32_t>(exe.size());
      RawRecord r{OCR_REC_PROCESS, 1, bytes_of(pr)};
      append_bytes(&r.payload, cwd.data(), cwd.size());
      append_bytes(&r.payload, exe.data(), exe.size());
      recs.push_back(r);
    }
    if (with_sigactions) recs.push_back({OCR_REC_SIGACTIONS, 1, bytes_of(sigactions)});
    for (const ocr_thread_record& t : threads) recs.push_back({OCR_REC_THREAD, 1, bytes_of(t)});
    for (const File& f : files) {
      ocr_file_record fr = f.rec;
      fr.path_len = static_cast<uint32_t>(f.path.size());
      RawRecord r{OCR_REC_FILE, 1, bytes_of(fr)};
      append_bytes(&r.payload, f.path.data(), f.path.size());
      recs.push_back(r);
    }
    uint64_t off = data_offset;
    for (const Region& reg : regions) {
      ocr_region_record rr = reg.rec;
      if (!reg.keep_nruns) rr.nruns = static_cast<uint32_t>(reg.runs.size());
      recs.push_back({OCR_REC_REGION, 1, bytes_of(rr)});
      RawRecord runs{OCR_REC_RUNS, 1, {}};
      for (const Run& run : reg.runs) {
        ocr_run_record rec{};
        rec.addr = run.addr;
        rec.npages = run.npages;
        if (run.inherited) {
          rec.data_offset = OCR_RUN_INHERITED;
          append_bytes(&runs.payload, &rec, sizeof rec);
          continue;
        }
        rec.data_offset = off;
        std::vector<uint8_t> bytes(run.npages * OCR_PAGE_SIZE);
        for (uint64_t i = 0; i < bytes.size(); i++) bytes[i] = page_byte(run, i);
        rec.hash = XXH3_64bits(bytes.data(), bytes.size());
        off += bytes.size();
        append_bytes(&runs.payload, &rec, sizeof rec);
      }
      recs.push_back(runs);
    }
    for (const Fd& f : fds) {
      ocr_fd_record fr = f.rec;
      fr.path_len = static_cast<uint32_t>(f.path.size());
      RawRecord r{OCR_REC_FD, 1, bytes_of(fr)};
      append_bytes(&r.payload, f.path.data(), f.path.size());
      recs.push_back(r);
    }
    recs.push_back({OCR_REC_END, 1, {}});
    return recs;
  }
};

// Helpers to patch records of an assembled or raw image.
template <class T>
T record_as(const RawRecord& r) {
  T v;
  memcpy(&v, r.payload.data(), sizeof v);
  return v;
}
template <class T>
void record_set(RawRecord* r, const T& v) {
  memcpy(r->payload.data(), &v, sizeof v);
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("image_builder: cannot create " + path);
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + off, bytes.size() - off);
    if (n <= 0) {
      close(fd);
      throw std::runtime_error("image_builder: write failed for " + path);
    }
    off += static_cast<size_t>(n);
  }
  close(fd);
}

}  // namespace ocr::test
