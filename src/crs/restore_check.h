// The checks ompi-cr-restore makes on an image and on the machine before it changes
// anything, as a validation-only entry point: ompi-restart runs them on every rank's
// image of a global snapshot before it launches a job, so a snapshot that cannot be
// restored is refused before any process starts. restore_loader.cpp uses the same code.
#pragma once

#include <string>
#include <vector>

#include "crs/image_reader.h"
#include "crs/restore_plan.h"

namespace ocr {

// The machine-dependent checks on chain[0] (img), in this order: the CPU can take back
// the saved register state (xfeatures, xsave size); every mapped file (the executable
// among them) is unchanged since the checkpoint (same_file_identity); the working
// directory is accessible; the running kernel's vdso is the checkpointed one. On failure
// returns false with *why = the reason alone (no path prefix), e.g. "mapped file /x/app
// changed since the checkpoint (size 10 -> 11)". When `specials` is not null it receives,
// on success, where this process's [vvar]/[vvar_vclock]/[vdso] must move to.
bool check_restore_environment(const Image& img, std::vector<ocr_plan_special>* specials,
                               std::string* why);

// Everything restore_process() checks before its first irreversible step, without
// restoring: read_image_chain() with `opt` (every record and checksum of every image of
// an incremental chain, the owner rule), then check_restore_environment(). Errors are one
// line naming the image, as restore_process() reports them.
bool validate_restore(const std::string& image_path, const ReadOptions& opt,
                      std::vector<Image>* chain, std::string* error);

}  // namespace ocr
