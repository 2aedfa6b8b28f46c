// GNU build-id of a mapped ELF file: the identity the restorer checks so that a program
// or library rebuilt since the checkpoint is refused instead of silently mixed with old
// pages. Called on the checkpoint path: pread only, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ocr {

// Reads the GNU build-id note (NT_GNU_BUILD_ID) of the ELF file open on fd using pread only
// (program headers PT_NOTE; falls back to SHT_NOTE sections, which covers
// .note.gnu.build-id in files without program headers). Little-endian ELF32 and ELF64.
// Returns the id length (copied to out, at most cap bytes: a longer id is truncated to
// cap and cap is returned), 0 if the file is not ELF, is truncated or malformed, or has no
// build-id, or -errno on I/O error. Every offset is validated; no read goes out of bounds.
int read_elf_build_id(int fd, uint8_t* out, size_t cap);

}  // namespace ocr
