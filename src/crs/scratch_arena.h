// Memory for the checkpoint path. Once application threads are quiesced, one of them may
// hold a malloc lock, and any heap change would also be half-written into the image; so
// everything the agent allocates between quiesce and release comes from this mmap'd
// bump arena. The arena is registered as a runtime-owned area and never saved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory_resource>

namespace ocr {

class ScratchArena final : public std::pmr::memory_resource {
 public:
  // Reserves `capacity` bytes of address space (MAP_NORESERVE; pages appear when used).
  explicit ScratchArena(size_t capacity = size_t{1} << 30);
  ~ScratchArena() override;
  ScratchArena(const ScratchArena&) = delete;
  ScratchArena& operator=(const ScratchArena&) = delete;

  bool ok() const { return base_ != nullptr; }
  // Forget every allocation; memory is returned to the kernel (MADV_DONTNEED).
  void reset();
  uintptr_t begin() const { return reinterpret_cast<uintptr_t>(base_); }
  uintptr_t end() const { return begin() + capacity_; }
  size_t used() const { return used_; }

 private:
  void* do_allocate(size_t bytes, size_t align) override;
  void do_deallocate(void*, size_t, size_t) override {}
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
    return this == &o;
  }

  char* base_ = nullptr;
  size_t capacity_ = 0;
  size_t used_ = 0;
  size_t high_water_ = 0;
};

}  // namespace ocr
