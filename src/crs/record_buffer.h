// Serializes image records (image_format.h): header with payload hash, then payload.
// Shared by the image writer (arena memory) and the chain compactor (ordinary heap).
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <memory_resource>
#include <string_view>
#include <vector>

#include "crs/image_format.h"

namespace ocr {

class RecordBuffer {
 public:
  explicit RecordBuffer(std::pmr::memory_resource* mr = std::pmr::new_delete_resource())
      : bytes_(mr) {}
  // One record whose payload is `a` followed by up to two strings (no terminators).
  void add(uint32_t type, const void* a, size_t alen, std::string_view s1 = {},
           std::string_view s2 = {}) {
    ocr_record_header h{};
    h.type = type;
    h.version = 1;
    h.size = alen + s1.size() + s2.size();
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, a, alen);
    XXH3_64bits_update(&st, s1.data(), s1.size());
    XXH3_64bits_update(&st, s2.data(), s2.size());
    h.hash = XXH3_64bits_digest(&st);
    append(&h, sizeof h);
    append(a, alen);
    append(s1.data(), s1.size());
    append(s2.data(), s2.size());
  }
  const char* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }

 private:
  void append(const void* p, size_t n) {
    if (!n) return;
    const char* c = static_cast<const char*>(p);
    bytes_.insert(bytes_.end(), c, c + n);
  }
  std::pmr::vector<char> bytes_;
};

}  // namespace ocr
