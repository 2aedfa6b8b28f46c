// Reader and validator of process images (format v1, crs/image_format.h). An image file
// is untrusted input: ompi-cr-restore must be able to refuse a damaged or foreign image
// before it touches its address space, so everything the restorer will rely on is checked
// here, and the whole file (every byte, including padding) is covered by a checksum or a
// must-be-zero rule.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crs/image_format.h"

namespace ocr {

struct ImageFile {
  ocr_file_record rec;
  std::string path;
};

struct ImageRegion {
  ocr_region_record rec;
  // Sorted by address, inside rec.start..rec.end. In an incremental image some may be
  // inherited (run_inherited()): their bytes are in the parent chain, not in this file.
  std::vector<ocr_run_record> runs;
};

inline bool run_inherited(const ocr_run_record& run) {
  return run.data_offset == OCR_RUN_INHERITED;
}

struct ImageFd {
  ocr_fd_record rec;
  std::string path;
  std::string pipe_bytes;  // OCR_FD_PIPE: what was buffered in the pipe (one end per pipe)
};

struct Image {
  std::string path;  // as opened
  ocr_image_header header{};
  ocr_process_record process{};
  std::string cwd, exe;
  ocr_sigaction_record sigactions{};
  bool have_sigactions = false;
  std::vector<ocr_thread_record> threads;
  std::vector<ImageFile> files;      // look up by rec.id with find_file()
  std::vector<ImageRegion> regions;  // in address order
  std::vector<ImageFd> fds;

  const ImageFile* find_file(uint32_t id) const;
  // The main thread (validated to exist exactly once).
  const ocr_thread_record* main_thread() const;
};

struct ReadOptions {
  bool verify_data = true;  // hash every page run (streams the whole data section)
  bool check_owner = true;  // the file must belong to the invoking user unless root
  // Uid the owner rule is applied for; -1 means getuid(). Lets tests exercise the rule
  // for a non-root invoker while running as root.
  int64_t invoker_uid = -1;
};

// Opens and fully validates `path`. On failure returns false and sets *error to one line,
// "<path>: <what is wrong>"; *out is then left untouched.
bool read_image(const std::string& path, const ReadOptions& opt, Image* out, std::string* error);

// Reads `path` and, if it is incremental, its parents (newest first: chain[0] is `path`,
// chain.back() the full image), each validated with `opt`. A parent's path is
// header.parent, relative to the child's directory unless absolute. Each link is checked:
// the parent's header_hash equals the child's parent_hash, chain_length drops by one at
// each step down to a full image, and the uid matches. Errors name the image at fault,
// e.g. "/s/2.crimg: parent image /s/1.crimg: No such file or directory".
bool read_image_chain(const std::string& path, const ReadOptions& opt, std::vector<Image>* chain,
                      std::string* error);

// Where an incremental image's parent lives ("" for a full image).
std::string parent_image_path(const Image& img);

// The owner rule alone: an image of uid `owner` may be used by `invoker` if they are equal
// or invoker is root. Returns false with "owned by uid X, not by you (uid Y)" in *why.
bool image_owner_allowed(unsigned owner, unsigned invoker, std::string* why);

// Human name of an ocr_skip_reason ("untouched", "clean-file", ...). Allocation-free
// callers use skip_reason_name() from crs/skip_reasons.h.
std::string describe_skip_reason(unsigned reason);

// Short names for tool output: "anon-private", "file-private", ...; "unknown" otherwise.
const char* region_kind_name(uint32_t kind);
const char* fd_kind_name(uint32_t kind);

// "rwx" style rendering of PROT_* bits.
std::string prot_string(uint32_t prot);

}  // namespace ocr
