// mmap-backed bump allocator for the checkpoint path (see scratch_arena.h).
#include "crs/scratch_arena.h"

#include <sys/mman.h>

#include <cstdlib>

namespace ocr {

ScratchArena::ScratchArena(size_t capacity) : capacity_(capacity) {
  void* p = mmap(nullptr, capacity, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p != MAP_FAILED) base_ = static_cast<char*>(p);
}

ScratchArena::~ScratchArena() {
  if (base_) munmap(base_, capacity_);
}

void ScratchArena::reset() {
  if (base_ && high_water_) madvise(base_, high_water_, MADV_DONTNEED);
  used_ = 0;
  high_water_ = 0;
}

void* ScratchArena::do_allocate(size_t bytes, size_t align) {
  size_t at = (used_ + align - 1) & ~(align - 1);
  // Running out is a bug in sizing, not a recoverable condition: throwing would
  // allocate through malloc, which is exactly what this arena exists to avoid.
  if (!base_ || at + bytes > capacity_) abort();
  used_ = at + bytes;
  if (used_ > high_water_) high_water_ = used_;
  return base_ + at;
}

}  // namespace ocr
