// The part of ompi-cr-restore that runs as a normal program: validates an image and its
// surroundings completely, prepares the restore plan, then hands over to the restorer
// blob (restorer_blob.c), which replaces this process's memory with the image's.
#pragma once

#include <string>

namespace ocr {

struct RestoreOptions {
  bool verbose = false;
  // An MPI rank restarted by ompi-restart: the channel of the proxy that owns its new MPI
  // library (handed to the restored runtime through ocr_restore_info).
  std::string proxy_channel;
};

// Does not return when the restore starts. Returns false with a one-line `error` when the
// image or the environment makes a restore impossible; nothing has been changed then.
bool restore_process(const std::string& image_path, const RestoreOptions& opt, std::string* error);

}  // namespace ocr
