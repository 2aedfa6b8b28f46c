// Identity of a file that backs a mapping: captured at checkpoint, compared at restart.
// A restored private file mapping takes its clean pages from the file as it is *then*, so
// the restorer must refuse a file whose content may have changed (rebuilt library, edited
// data file) instead of silently mixing old saved pages with new file pages.
#pragma once

#include <string>

#include "crs/image_format.h"

namespace ocr {

// Fills rec->dev, ino, size, mtime_sec/nsec, mode, and the ELF build-id (flags
// OCR_FILE_ELF + build_id/build_id_len; cleared when the file has none) from an open fd.
// rec->id and rec->path_len are left untouched. Allocation-free (fstat + pread): it runs on
// the checkpoint path with application threads frozen. Returns 0 or -errno.
int capture_file_identity(int fd, ocr_file_record* rec);

// True if the file at `path` is, content-wise, the one the image recorded: same size, same
// mtime (sec + nsec), same build-id when the record has one. dev/ino need not match (a
// snapshot may restart on another node with the same installed files). On mismatch *why
// says what differs, e.g. "size 1234 -> 1240; mtime 1700000000.000000000 -> ...; dev:ino
// 8:1:123 -> 8:1:456". On a match *why is empty, or notes a different dev:ino.
bool same_file_identity(const std::string& path, const ocr_file_record& rec, std::string* why);

}  // namespace ocr
