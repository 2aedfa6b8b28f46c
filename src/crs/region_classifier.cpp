// Region policy of the checkpoint (see region_classifier.h and DESIGN.md section 4).
#include "crs/region_classifier.h"

#include <string_view>

namespace ocr {
namespace {

// Kernel-provided mappings. The kernel recreates them in the restored process (vdso and
// vvar are moved onto the saved addresses by the restorer, [vsyscall] is fixed, the
// uprobes XOL page is made on demand); their bytes are not the application's.
bool is_kernel_special(std::string_view p) {
  return p == "[vvar]" || p == "[vvar_vclock]" || p == "[vdso]" || p == "[vsyscall]" ||
         p == "[uprobes]";
}

// A file the restorer can open again by path and map. Shared anonymous memory and SysV
// segments show up under pseudo-paths on an internal shmem mount: they cannot be
// reopened, so their bytes must travel in the image.
bool is_reopenable_file(const MapEntry& e) {
  std::string_view p = e.path;
  if (p.empty() || p.front() != '/' || e.inode == 0 || e.deleted) return false;
  if (p == "/dev/zero") return false;
  if (p.starts_with("/SYSV") || p.starts_with("/memfd:")) return false;
  return true;
}

RegionClass make(uint32_t kind, uint32_t skip, PageSelect sel, bool needs_file) {
  return RegionClass{kind, skip, 0, sel, needs_file};
}

RegionClass skipped(uint32_t reason) {
  return make(OCR_REGION_SKIPPED, reason, PageSelect::kPresentOrSwapped, false);
}

RegionClass classify_kind(const MapEntry& e, bool is_runtime_owned) {
  if (is_runtime_owned) return skipped(OCR_SKIP_RUNTIME);
  if (is_kernel_special(e.path)) return skipped(OCR_SKIP_KERNEL);
  // hugetlbfs pages are not in the pagemap/PAGEMAP_SCAN picture this scan relies on
  // (present/zero/file at 4 KiB granularity), and restoring needs a hugetlb mapping of the
  // same page size with enough reserved huge pages on the target node, which nothing
  // checks yet. Skipping loudly (counted as device memory) beats saving a wrong image.
  if (e.has_vm_flag(OCR_VMF_HUGETLB)) return skipped(OCR_SKIP_DEVICE);
  // MMIO and raw PFN mappings have no struct page behind them: reading may have side
  // effects and the contents belong to a device that a new process must set up again.
  if (e.has_vm_flag(OCR_VMF_IO | OCR_VMF_PFNMAP)) return skipped(OCR_SKIP_DEVICE);

  if (is_reopenable_file(e)) {
    if (e.shared)
      return make(OCR_REGION_FILE_SHARED, OCR_SKIP_REASONS, PageSelect::kPresentOrSwapped, true);
    return make(OCR_REGION_FILE_PRIVATE, OCR_SKIP_REASONS, PageSelect::kPrivateCopies, true);
  }
  // Anonymous memory, private /dev/zero, or a file that is gone or cannot be reopened:
  // the bytes in memory are the only copy. Shared memory can hold pages that only another
  // process touched, and a private mapping of a deleted file has file pages we never
  // faulted in; neither shows in our page tables, so those scans also ask the backing
  // object (kPresentOrResident).
  if (e.shared)
    return make(OCR_REGION_ANON_SHARED, OCR_SKIP_REASONS, PageSelect::kPresentOrResident, false);
  const bool file_backed = e.inode != 0 && e.path != "/dev/zero" && !e.path.starts_with("[");
  return make(OCR_REGION_ANON_PRIVATE, OCR_SKIP_REASONS,
              file_backed ? PageSelect::kPresentOrResident : PageSelect::kPresentOrSwapped, false);
}

}  // namespace

RegionClass classify_region(const MapEntry& e, bool is_runtime_owned) {
  RegionClass c = classify_kind(e, is_runtime_owned);
  std::string_view p = e.path;
  if (p == "[heap]") c.flags |= OCR_REGION_HEAP;
  if (p == "[stack]") c.flags |= OCR_REGION_STACK;
  if (e.has_vm_flag(OCR_VMF_GROWSDOWN)) c.flags |= OCR_REGION_GROWSDOWN;
  return c;
}

}  // namespace ocr
