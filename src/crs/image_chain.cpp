// Resolution of incremental chains and their compaction (see image_chain.h).
#include "crs/image_chain.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "crs/record_buffer.h"

namespace ocr {
namespace {

constexpr uint64_t kPage = OCR_PAGE_SIZE;

// Appends the pieces of [a, b) as held by chain[i] (recursing into parents for pages
// chain[i] itself inherited).
void resolve_range(const std::vector<Image>& chain, size_t i, uint64_t a, uint64_t b,
                   std::vector<ResolvedRun>* out) {
  if (i >= chain.size() || a >= b) return;
  for (const ImageRegion& r : chain[i].regions) {
    if (r.rec.end <= a || r.rec.start >= b) continue;
    for (const ocr_run_record& run : r.runs) {
      const uint64_t rs = run.addr, re = run.addr + run.npages * kPage;
      const uint64_t s = std::max(rs, a), e = std::min(re, b);
      if (s >= e) continue;
      if (run_inherited(run))
        resolve_range(chain, i + 1, s, e, out);
      else
        out->push_back({s, e - s, i, run.data_offset + (s - rs)});
    }
  }
}

bool pread_all(int fd, char* buf, size_t len, uint64_t off) {
  while (len) {
    ssize_t r = pread(fd, buf, len, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf += r;
    off += static_cast<uint64_t>(r);
    len -= static_cast<size_t>(r);
  }
  return true;
}

bool pwrite_all(int fd, const char* buf, size_t len, uint64_t off) {
  while (len) {
    ssize_t w = pwrite(fd, buf, len, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    buf += w;
    off += static_cast<uint64_t>(w);
    len -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

void resolve_region_runs(const std::vector<Image>& chain, const ImageRegion& region,
                         std::vector<ResolvedRun>* out) {
  out->clear();
  for (const ocr_run_record& run : region.runs) {
    const uint64_t a = run.addr, b = run.addr + run.npages * kPage;
    if (run_inherited(run))
      resolve_range(chain, 1, a, b, out);
    else
      out->push_back({a, b - a, 0, run.data_offset});
  }
  std::sort(out->begin(), out->end(),
            [](const ResolvedRun& x, const ResolvedRun& y) { return x.addr < y.addr; });
}

bool compact_chain(const std::vector<Image>& chain, const std::string& out_path,
                   std::string* error) {
  if (chain.empty()) {
    *error = out_path + ": empty chain";
    return false;
  }
  const Image& top = chain[0];
  std::vector<int> fds;
  auto close_all = [&]() {
    for (int fd : fds)
      if (fd >= 0) close(fd);
  };
  for (const Image& img : chain) {
    int fd = open(img.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      *error = img.path + ": " + strerror(errno);
      close_all();
      return false;
    }
    fds.push_back(fd);
  }

  // New run lists: every resolved piece becomes a run with data of this image.
  std::vector<std::vector<ResolvedRun>> pieces(top.regions.size());
  size_t records_size = 0;
  const size_t rh = sizeof(ocr_record_header);
  records_size += rh + sizeof top.process + top.cwd.size() + top.exe.size();
  if (top.have_sigactions) records_size += rh + sizeof top.sigactions;
  records_size += top.threads.size() * (rh + sizeof(ocr_thread_record));
  for (const ImageFile& f : top.files) records_size += rh + sizeof f.rec + f.path.size();
  for (size_t i = 0; i < top.regions.size(); i++) {
    resolve_region_runs(chain, top.regions[i], &pieces[i]);
    records_size += 2 * rh + sizeof(ocr_region_record) + pieces[i].size() * sizeof(ocr_run_record);
  }
  for (const ImageFd& f : top.fds) records_size += rh + sizeof f.rec + f.path.size();
  records_size += rh;
  const uint64_t data_offset = (OCR_HEADER_AREA + records_size + kPage - 1) & ~(kPage - 1);

  const std::string tmp = out_path + ".tmp";
  int out = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) {
    *error = tmp + ": " + strerror(errno);
    close_all();
    return false;
  }
  auto fail = [&](const std::string& msg) {
    *error = msg;
    close(out);
    unlink(tmp.c_str());
    close_all();
    return false;
  };

  // Copy the data, hashing each new run as it goes.
  std::vector<char> buf(size_t{1} << 20);
  uint64_t off = data_offset;
  std::vector<std::vector<ocr_run_record>> runs(top.regions.size());
  for (size_t i = 0; i < top.regions.size(); i++) {
    for (const ResolvedRun& p : pieces[i]) {
      ocr_run_record rr{p.addr, p.len / kPage, off, 0};
      XXH3_state_t st;
      XXH3_64bits_reset(&st);
      for (uint64_t done = 0; done < p.len;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(p.len - done, buf.size()));
        if (!pread_all(fds[p.image], buf.data(), n, p.offset + done))
          return fail(chain[p.image].path + ": short read of page data");
        XXH3_64bits_update(&st, buf.data(), n);
        if (!pwrite_all(out, buf.data(), n, off + done)) return fail(tmp + ": " + strerror(errno));
        done += n;
      }
      rr.hash = XXH3_64bits_digest(&st);
      runs[i].push_back(rr);
      off += p.len;
    }
  }

  RecordBuffer rec;
  rec.add(OCR_REC_PROCESS, &top.process, sizeof top.process, top.cwd, top.exe);
  if (top.have_sigactions) rec.add(OCR_REC_SIGACTIONS, &top.sigactions, sizeof top.sigactions);
  for (const ocr_thread_record& t : top.threads) rec.add(OCR_REC_THREAD, &t, sizeof t);
  for (const ImageFile& f : top.files) rec.add(OCR_REC_FILE, &f.rec, sizeof f.rec, f.path);
  for (size_t i = 0; i < top.regions.size(); i++) {
    ocr_region_record r = top.regions[i].rec;
    r.flags &= ~OCR_REGION_TRACKED;
    r.nruns = static_cast<uint32_t>(runs[i].size());
    rec.add(OCR_REC_REGION, &r, sizeof r);
    rec.add(OCR_REC_RUNS, runs[i].data(), runs[i].size() * sizeof(ocr_run_record));
  }
  for (const ImageFd& f : top.fds) rec.add(OCR_REC_FD, &f.rec, sizeof f.rec, f.path);
  rec.add(OCR_REC_END, nullptr, 0);
  if (rec.size() != records_size) return fail(out_path + ": internal: record size mismatch");

  ocr_image_header h = top.header;
  h.flags &= ~OCR_HDR_INCREMENTAL;
  memset(h.parent, 0, sizeof h.parent);
  h.parent_hash = 0;
  h.chain_length = 1;
  h.records_offset = OCR_HEADER_AREA;
  h.records_size = records_size;
  h.records_hash = XXH3_64bits(rec.data(), rec.size());
  h.data_offset = data_offset;
  h.data_size = off - data_offset;
  h.saved_bytes = h.data_size;
  // Pages the chain's links did not carry are now all in this image.
  h.skipped_bytes[OCR_SKIP_UNCHANGED] = 0;
  h.header_hash = 0;
  h.header_hash = XXH3_64bits(&h, sizeof h);
  std::vector<char> page(OCR_HEADER_AREA, 0);
  memcpy(page.data(), &h, sizeof h);
  if (!pwrite_all(out, rec.data(), rec.size(), OCR_HEADER_AREA) ||
      !pwrite_all(out, page.data(), page.size(), 0) ||
      ftruncate(out, static_cast<off_t>(off)) != 0 || fsync(out) != 0)
    return fail(tmp + ": " + strerror(errno));
  close(out);
  close_all();
  if (rename(tmp.c_str(), out_path.c_str()) != 0) {
    *error = out_path + ": " + strerror(errno);
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace ocr
