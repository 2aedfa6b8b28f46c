// ompi-cr-compact: folds an incremental chain into one full image, so that the links
// before it can be deleted. The result restores exactly like the chain's newest image.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "build_config.h"
#include "crs/image_chain.h"
#include "crs/image_reader.h"
#include "tools/tool_paths.h"

namespace {
constexpr const char* kTool = "ompi-cr-compact";

std::string default_output(const std::string& image) {
  const std::string ext = ".crimg";
  std::string base = image;
  if (base.size() > ext.size() && base.compare(base.size() - ext.size(), ext.size(), ext) == 0)
    base.resize(base.size() - ext.size());
  return base + ".full" + ext;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Compact an incremental image chain into one full image.", kTool};
  std::string image, output;
  bool quiet = false;
  app.add_option("image", image, "Newest image of the chain")->required();
  app.add_option("-o,--output", output,
                 "Where to write the full image (default: IMAGE.full.crimg)");
  app.add_flag("-q,--quiet", quiet, "Print nothing on success");
  app.set_version_flag("--version", OMPI_CR_VERSION);
  ocr::tools::parse_or_exit(app, argc, argv, kTool);

  const std::string path = ocr::tools::absolute_path(image);
  const std::string out = ocr::tools::absolute_path(output.empty() ? default_output(path) : output);
  if (out == path) ocr::tools::die(kTool, "output " + out, "is the input image");
  if (access(out.c_str(), F_OK) == 0) ocr::tools::die(kTool, "output " + out, "already exists");
  std::vector<ocr::Image> chain;
  std::string error;
  if (!ocr::read_image_chain(path, ocr::ReadOptions{}, &chain, &error))
    ocr::tools::die(kTool, "cannot read the chain", error);
  if (!ocr::compact_chain(chain, out, &error)) ocr::tools::die(kTool, "cannot compact", error);
  // The result must stand on its own: validate it like a restore would.
  ocr::Image check;
  if (!ocr::read_image(out, ocr::ReadOptions{}, &check, &error)) {
    unlink(out.c_str());
    ocr::tools::die(kTool, "compacted image failed validation", error);
  }
  if (!quiet)
    printf("Compacted %zu image(s) into %s (%llu bytes of page data)\n", chain.size(), out.c_str(),
           static_cast<unsigned long long>(check.header.data_size));
  return 0;
}
