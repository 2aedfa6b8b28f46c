// The thread-safe registry behind the public hints API: exclude / include hints, receive
// buffers and callbacks, each under a handle.
//
// Cost model: the MPI library may register and deregister a receive buffer per message,
// so those calls take one uncontended mutex, an O(1) slot lookup and, for receive buffers,
// an O(log n) ordered-map operation whose nodes come from a pool (no malloc in the steady
// state). The checkpoint-time reader (collect) walks the slot table under the same lock and
// allocates only from the caller's arena.
//
// Handles encode a slot index (low 20 bits, +1 so that handles are > 0) and the slot's
// generation (11 bits). Freed slots are reused first-in first-out and only once at least
// kReuseDistance slots are free, so a stale handle is recognised as unknown until its slot
// has been reused 2048 times, i.e. for at least ~2 million registrations.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory_resource>
#include <mutex>
#include <vector>

#include "hints/exclusion_math.h"
#include "hints/hints_internal.h"
#include "ompi_cr/hints.h"

namespace ocr::hints {

// The highest address a range may reach: x86_64 user space with 5-level paging.
inline constexpr uint64_t kAddressLimit = uint64_t{1} << 57;

class Registry {
 public:
  enum Kind : uint8_t { kFree = 0, kExclude = 1, kInclude = 2, kRecv = 3, kCallback = 4 };

  static constexpr uint32_t kIndexBits = 20;
  static constexpr uint32_t kMaxSlots = (uint32_t{1} << kIndexBits) - 1;
  static constexpr uint32_t kGenMask = (uint32_t{1} << (31 - kIndexBits)) - 1;
  static constexpr uint32_t kReuseDistance = 1024;

  // max_slots < kMaxSlots lets tests reach the NOMEM limit quickly.
  explicit Registry(uint32_t max_slots = kMaxSlots);
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // kExclude, kInclude or kRecv. Validates the range (INVALID) and, for kRecv, overlap
  // with other receive buffers (CONFLICT).
  int add_range(Kind kind, const void* addr, size_t len, ompi_cr_handle_t* handle);
  int remove_hint(ompi_cr_handle_t handle);  // kExclude or kInclude
  int recv_set_data(ompi_cr_handle_t handle, size_t offset, size_t len);
  int recv_deregister(ompi_cr_handle_t handle);
  int callback_register(ompi_cr_callback_fn fn, void* arg, ompi_cr_handle_t* handle);
  int callback_unregister(ompi_cr_handle_t handle);

  // See hints_internal.h. Sets tls_in_callback (hints_private.h) while a callback runs.
  void run_callbacks(ompi_cr_phase_t phase);
  void collect(std::pmr::memory_resource* mr, std::pmr::vector<ExcludedRange>& out);

  // Live registrations of all kinds (tests, diagnostics).
  size_t live();

  // pthread_atfork support: lock in the parent before fork, unlock in both afterwards;
  // the child also forgets a callback that was running in a thread it does not have.
  void fork_prepare() { mu_.lock(); }
  void fork_parent() { mu_.unlock(); }
  void fork_child();

 private:
  static constexpr uint32_t kNone = UINT32_MAX;

  struct Entry {
    uint64_t start = 0, end = 0;            // the range (kExclude, kInclude, kRecv)
    uint64_t data_start = 0, data_end = 0;  // kRecv: message data, empty when equal
    ompi_cr_callback_fn fn = nullptr;       // kCallback
    void* arg = nullptr;
    uint64_t order = 0;  // kCallback: registration order
    uint32_t gen = 0;
    uint32_t next_free = kNone;
    Kind kind = kFree;
  };

  static ompi_cr_handle_t make_handle(uint32_t idx, uint32_t gen) {
    return static_cast<ompi_cr_handle_t>(((gen & kGenMask) << kIndexBits) | (idx + 1));
  }
  // The live entry of `kind` behind `h`, or nullptr. Lock held.
  Entry* find(ompi_cr_handle_t h, Kind kind, uint32_t* idx_out = nullptr);
  // A free slot, or kNone when the table is full (NOMEM). May throw std::bad_alloc.
  uint32_t take_slot();
  void free_slot(uint32_t idx);

  std::mutex mu_;
  std::condition_variable cb_done_;  // signalled when a callback returns
  const uint32_t max_slots_;
  std::vector<Entry> slots_;
  uint32_t free_head_ = kNone, free_tail_ = kNone, free_count_ = 0;
  size_t live_ = 0;
  // Receive buffers by start address, for the overlap check. Map nodes come from the pool.
  std::pmr::unsynchronized_pool_resource pool_;
  std::pmr::map<uint64_t, uint32_t> recv_by_start_{&pool_};
  std::vector<uint32_t> callbacks_;  // slot indices, registration order
  uint64_t next_order_ = 1;
  ompi_cr_handle_t running_callback_ = 0;  // the callback being called, or 0
};

}  // namespace ocr::hints
