// ompi-cr-info: validates an image like the restorer does and prints what is in it, for
// users ("why is my image so big", "what was excluded") and for debugging the writer.
// Given a global snapshot directory (global_snapshot_meta.h5 inside), it summarises the
// job, every complete snapshot and each rank's part instead.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "build_config.h"
#include "crs/image_reader.h"
#include "crs/skip_reasons.h"
#include "snapc/global_snapshot.h"
#include "tools/snapshot_summary.h"
#include "tools/tool_paths.h"

namespace {

constexpr const char* kTool = "ompi-cr-info";
using ull = unsigned long long;

std::string region_flags(uint32_t f) {
  std::string s;
  auto add = [&](const char* n) { s += s.empty() ? n : std::string(",") + n; };
  if (f & OCR_REGION_HEAP) add("heap");
  if (f & OCR_REGION_STACK) add("stack");
  if (f & OCR_REGION_GROWSDOWN) add("growsdown");
  if (f & OCR_REGION_TRACKED) add("tracked");
  return s.empty() ? "-" : s;
}

std::string open_flags(uint32_t f, uint32_t fd_flags) {
  std::string s;
  switch (f & O_ACCMODE) {
    case O_RDONLY:
      s = "rdonly";
      break;
    case O_WRONLY:
      s = "wronly";
      break;
    default:
      s = "rdwr";
      break;
  }
  if (f & O_APPEND) s += ",append";
  if (f & O_NONBLOCK) s += ",nonblock";
  if (f & O_DIRECT) s += ",direct";
  if (f & O_SYNC) s += ",sync";
  if (fd_flags & FD_CLOEXEC) s += ",cloexec";
  return s;
}

std::string hex(const uint8_t* p, size_t n) {
  std::string s;
  char b[3];
  for (size_t i = 0; i < n; i++) {
    snprintf(b, sizeof b, "%02x", p[i]);
    s += b;
  }
  return s;
}

const char* backend_name(uint32_t b) {
  switch (b) {
    case OCR_DIRTY_NONE:
      return "none";
    case OCR_DIRTY_UFFD_WP:
      return "userfaultfd-wp";
    case OCR_DIRTY_SOFT_DIRTY:
      return "soft-dirty";
    case OCR_DIRTY_HASH:
      return "page-hash";
  }
  return "unknown";
}

void print_image(const std::vector<ocr::Image>& chain) {
  const ocr::Image& img = chain.front();
  const ocr_image_header& h = img.header;
  const bool incremental = h.flags & OCR_HDR_INCREMENTAL;
  uint64_t runs = 0, saved_pages = 0, inherited_pages = 0;
  for (const ocr::ImageRegion& r : img.regions) {
    runs += r.runs.size();
    for (const ocr_run_record& run : r.runs)
      (ocr::run_inherited(run) ? inherited_pages : saved_pages) += run.npages;
  }

  printf("Image:       %s\n", img.path.c_str());
  std::string flags = incremental ? "incremental" : "full";
  if (h.flags & OCR_HDR_HAVE_MM_MAP) flags += ", mm-map";
  printf("Format:      version %u, %u-byte pages, flags 0x%llx (%s)\n", h.version, h.page_size,
         static_cast<ull>(h.flags), flags.c_str());
  if (incremental) {
    printf("Parent:      %s (header hash %016llx)\n", h.parent, static_cast<ull>(h.parent_hash));
    printf("Chain:       %u images (dirty pages found by %s), newest first:\n", h.chain_length,
           backend_name(h.dirty_backend));
    for (const ocr::Image& link : chain)
      printf("               seq %-6llu %s\n", static_cast<ull>(link.header.seq),
             link.path.c_str());
  }
  printf("Process:     pid %d, uid %u, %u thread%s\n", h.pid, h.uid, h.nthreads,
         h.nthreads == 1 ? "" : "s");
  printf("Sequence:    %llu\n", static_cast<ull>(h.seq));
  printf("Created:     %s\n", ocr::tools::format_time_ns(h.created_ns).c_str());
  printf("Executable:  %s\n", img.exe.c_str());
  printf("Directory:   %s\n", img.cwd.c_str());
  printf("CPU state:   xfeatures 0x%llx, xsave area %u bytes\n", static_cast<ull>(h.xfeatures),
         h.xsave_size);
  printf("Saved:       %llu bytes (%s) in %llu pages, %llu runs\n", static_cast<ull>(h.saved_bytes),
         ocr::tools::human_bytes(h.saved_bytes).c_str(), static_cast<ull>(saved_pages),
         static_cast<ull>(runs));
  if (incremental)
    printf("Inherited:   %llu pages (%s) unchanged since the parent\n",
           static_cast<ull>(inherited_pages),
           ocr::tools::human_bytes(inherited_pages * OCR_PAGE_SIZE).c_str());
  printf("Skipped:\n");
  uint64_t skipped = 0;
  for (unsigned i = 0; i < OCR_SKIP_REASONS; i++) {
    skipped += h.skipped_bytes[i];
    printf("  %-16s %15llu bytes  %10s\n", ocr::skip_reason_name(i),
           static_cast<ull>(h.skipped_bytes[i]),
           ocr::tools::human_bytes(h.skipped_bytes[i]).c_str());
  }
  printf("  %-16s %15llu bytes  %10s\n", "total", static_cast<ull>(skipped),
         ocr::tools::human_bytes(skipped).c_str());

  printf("\nRegions (%zu):\n", img.regions.size());
  printf("  %-33s %-4s %-12s %-16s %8s  %s\n", "address", "prot", "kind", "flags", "saved",
         "file / reason");
  for (const ocr::ImageRegion& r : img.regions) {
    uint64_t pages = 0;
    for (const ocr_run_record& run : r.runs)
      if (!ocr::run_inherited(run)) pages += run.npages;
    std::string what;
    if (r.rec.kind == OCR_REGION_FILE_PRIVATE || r.rec.kind == OCR_REGION_FILE_SHARED) {
      const ocr::ImageFile* f = img.find_file(r.rec.file_id);
      char off[40];
      snprintf(off, sizeof off, " @0x%llx", static_cast<ull>(r.rec.file_offset));
      what = (f ? f->path : "?") + off;
    } else if (r.rec.kind == OCR_REGION_SKIPPED) {
      what = std::string("[") + ocr::skip_reason_name(r.rec.skip_reason) + "]";
    }
    char range[40];
    snprintf(range, sizeof range, "%016llx-%016llx", static_cast<ull>(r.rec.start),
             static_cast<ull>(r.rec.end));
    char line[512];
    snprintf(line, sizeof line, "  %-33s %-4s %-12s %-16s %8s  ", range,
             ocr::prot_string(r.rec.prot).c_str(), ocr::region_kind_name(r.rec.kind),
             region_flags(r.rec.flags).c_str(),
             ocr::tools::human_bytes(pages * OCR_PAGE_SIZE).c_str());
    std::string out = line + what;
    while (!out.empty() && out.back() == ' ') out.pop_back();
    printf("%s\n", out.c_str());
  }

  printf("\nThreads (%zu):\n", img.threads.size());
  for (const ocr_thread_record& t : img.threads) {
    std::string role = (t.flags & OCR_THREAD_MAIN) ? "main" : "";
    if (t.flags & OCR_THREAD_RUNTIME) role += role.empty() ? "runtime" : ",runtime";
    printf("  tid %-8d %-12s fs_base 0x%llx  rip 0x%llx  rsp 0x%llx  sigmask 0x%llx\n", t.tid,
           role.empty() ? "-" : role.c_str(), static_cast<ull>(t.fs_base),
           static_cast<ull>(t.ctx.rip), static_cast<ull>(t.ctx.rsp), static_cast<ull>(t.sigmask));
  }

  printf("\nFiles (%zu):\n", img.files.size());
  for (const ocr::ImageFile& f : img.files) {
    printf("  %-4u %s\n       size %llu, mtime %lld.%09lld, inode %llu%s%s\n", f.rec.id,
           f.path.c_str(), static_cast<ull>(f.rec.size), static_cast<long long>(f.rec.mtime_sec),
           static_cast<long long>(f.rec.mtime_nsec), static_cast<ull>(f.rec.ino),
           f.rec.build_id_len ? ", build-id " : "",
           hex(f.rec.build_id, f.rec.build_id_len).c_str());
  }

  printf("\nFile descriptors (%zu):\n", img.fds.size());
  for (const ocr::ImageFd& f : img.fds) {
    printf("  %-4d %-11s %-24s offset %-10lld %s\n", f.rec.fd, ocr::fd_kind_name(f.rec.kind),
           open_flags(f.rec.flags, f.rec.fd_flags).c_str(), static_cast<long long>(f.rec.offset),
           f.path.c_str());
  }

  int handlers = 0;
  if (img.have_sigactions)
    for (const ocr_ksigaction& a : img.sigactions.act)
      if (a.handler > 1) handlers++;  // neither SIG_DFL (0) nor SIG_IGN (1)
  printf("\nSignals:     %s", img.have_sigactions ? "" : "no signal record\n");
  if (img.have_sigactions) printf("%d handler%s installed\n", handlers, handlers == 1 ? "" : "s");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Validate a process image and print what it holds; or, given a global snapshot\n"
      "directory of an MPI job, summarise its snapshots and ranks.",
      kTool};
  std::string image;
  bool no_verify = false;
  app.add_option("IMAGE", image, "Image file, or global snapshot directory")->required();
  app.add_flag("--no-verify", no_verify, "Skip the checksums of the page data (faster)");
  app.set_version_flag("--version", OMPI_CR_VERSION);
  ocr::tools::parse_or_exit(app, argc, argv, kTool);

  struct stat dst;
  const std::string target = ocr::tools::absolute_path(image);
  if (stat(target.c_str(), &dst) == 0 && S_ISDIR(dst.st_mode)) {
    if (access((target + "/" + ocr::snapc::kMetaFileName).c_str(), F_OK) != 0)
      ocr::tools::die(kTool, target,
                      std::string("a directory without ") + ocr::snapc::kMetaFileName +
                          " (not a global snapshot)");
    ocr::snapc::GlobalSnapshot g;
    std::string gerr;
    if (!ocr::snapc::read_global_snapshot(target, &g, &gerr)) ocr::tools::die(kTool, gerr);
    ocr::tools::print_global_snapshot(g);
    return 0;
  }

  ocr::ReadOptions opt;
  opt.verify_data = !no_verify;
  // Looking is harmless: report a foreign owner instead of refusing, as the restorer would.
  opt.check_owner = false;
  // An incremental image is only usable with its parents, so check them all.
  std::vector<ocr::Image> chain;
  std::string err;
  if (!ocr::read_image_chain(ocr::tools::absolute_path(image), opt, &chain, &err))
    ocr::tools::die(kTool, err);
  print_image(chain);
  const ocr::Image& img = chain.front();
  struct stat st;
  std::string why;
  if (stat(img.path.c_str(), &st) == 0 && !ocr::image_owner_allowed(st.st_uid, getuid(), &why))
    printf("\nNote:        %s: only its owner (or root) can restart it\n", why.c_str());
  if (no_verify) printf("\nNote:        page data not verified (--no-verify)\n");
  return 0;
}
