// The application side of the proxy channel (src/proxy/channel.h): connecting in a
// restored rank, one call at a time per slot, and the message arena's allocator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "proxy/channel.h"

namespace ocr::crcp {

// Maps the channel of the proxy that ompi-cr-restore started for this rank (its path came
// through ocr_restore_info) and waits until the proxy has joined the new job. False with
// a one-line reason.
bool proxy_connect(const char* path, std::string* err);
// The mapping (an MPI-runtime area of later images) and the proxy's view of the job.
void proxy_area(uint64_t* start, uint64_t* end);
const proxy::Header* proxy_header();

struct ProxyResult {
  int rc;            // MPI error code
  const int64_t* r;  // results (valid until the next call on the slot)
  unsigned char* data;
};
// Runs one call. `data`/`len` are copied into the slot's data area first (int arrays).
ProxyResult proxy_call(proxy::Op op, std::initializer_list<int64_t> args,
                       const void* data = nullptr, size_t len = 0, int slot = proxy::kAppSlot);
unsigned char* proxy_slot_data(int slot);

// Message arena: offsets into the channel's arena, owned by this process.
int64_t arena_alloc(size_t bytes);
void arena_free(int64_t off);
unsigned char* arena_at(int64_t off);

}  // namespace ocr::crcp
