// Validation-only part of the restore (see restore_check.h): moved out of
// restore_loader.cpp unchanged so that ompi-restart can check a snapshot's images the way
// ompi-cr-restore will, without linking the restorer blob.
#include "crs/restore_check.h"

#include <unistd.h>
#include <xxhash.h>

#include <cstdio>
#include <memory_resource>

#include "crs/file_identity.h"
#include "crs/kernel_state.h"
#include "crs/proc_maps.h"

namespace ocr {
namespace {

struct Special {
  uint64_t start, end;
  std::string name;
};

// This process's [vvar], [vvar_vclock], [vdso] in address order.
std::vector<Special> current_specials() {
  std::vector<Special> out;
  std::pmr::unsynchronized_pool_resource pool;
  int err = 0;
  std::string_view text = read_whole_file("/proc/self/maps", &pool, &err);
  std::pmr::vector<MapEntry> maps(&pool);
  const char* perr = nullptr;
  if (text.empty() || parse_proc_maps(text, maps, &perr) != 0) return out;
  for (const MapEntry& m : maps)
    if (m.path == "[vvar]" || m.path == "[vvar_vclock]" || m.path == "[vdso]")
      out.push_back({m.start, m.end, std::string(m.path)});
  return out;
}

bool refuse(std::string* why, const std::string& msg) {
  *why = msg;
  return false;
}

}  // namespace

bool check_restore_environment(const Image& img, std::vector<ocr_plan_special>* specials_out,
                               std::string* why) {
  // The CPU must be able to take back the register state the signal frames hold.
  const uint64_t have = cpu_xfeatures();
  if (img.header.xfeatures & ~have) {
    char b[160];
    snprintf(b, sizeof b, "needs CPU state features 0x%llx that this CPU lacks (it has 0x%llx)",
             static_cast<unsigned long long>(img.header.xfeatures),
             static_cast<unsigned long long>(have));
    return refuse(why, b);
  }
  if (img.header.xsave_size > cpu_xsave_size())
    return refuse(why, "extended CPU state larger than this CPU's");

  for (const ImageFile& f : img.files) {
    std::string differs;
    if (!same_file_identity(f.path, f.rec, &differs))
      return refuse(why,
                    "mapped file " + f.path + " changed since the checkpoint (" + differs + ")");
  }
  if (img.cwd.empty() || access(img.cwd.c_str(), X_OK) != 0)
    return refuse(why, "working directory " + img.cwd + " is not accessible");

  // The kernel's special mappings move to where the restored libc expects them; that only
  // works with the same kernel's vdso.
  std::vector<Special> cur = current_specials();
  std::vector<ocr_plan_special> specials;
  const ocr_process_record& pr = img.process;
  if (pr.vdso_start) {
    uint64_t cur_vvar = 0, cur_vdso = 0, cur_end = 0;
    for (const Special& s : cur) {
      if (!cur_vvar || s.start < cur_vvar) cur_vvar = s.start;
      if (s.name == "[vdso]") {
        cur_vdso = s.start;
        cur_end = s.end;
      }
    }
    if (!cur_vdso) return refuse(why, "this system maps no vdso, the checkpointed process had one");
    const uint64_t saved_vvar = pr.vvar_start ? pr.vvar_start : pr.vdso_start;
    if (cur_vdso - cur_vvar != pr.vdso_start - saved_vvar ||
        cur_end - cur_vvar != pr.vdso_group_end - saved_vvar ||
        XXH3_64bits(reinterpret_cast<const void*>(cur_vdso), cur_end - cur_vdso) != pr.vdso_hash)
      return refuse(why,
                    "the running kernel's vdso differs from the checkpointed one (another kernel)");
    for (const Special& s : cur)
      specials.push_back({s.start, s.end, saved_vvar + (s.start - cur_vvar)});
  }
  if (specials_out) *specials_out = std::move(specials);
  return true;
}

bool validate_restore(const std::string& image_path, const ReadOptions& opt,
                      std::vector<Image>* chain, std::string* error) {
  std::vector<Image> c;
  if (!read_image_chain(image_path, opt, &c, error)) return false;
  std::string why;
  if (!check_restore_environment(c[0], nullptr, &why)) {
    *error = image_path + ": " + why;
    return false;
  }
  *chain = std::move(c);
  return true;
}

}  // namespace ocr
