// The hints registry (see registry.h for the data structure and its cost).
#include "hints/registry.h"

#include <algorithm>
#include <new>

#include "hints/hints_private.h"

namespace ocr::hints {

Registry::Registry(uint32_t max_slots)
    : max_slots_(std::min(max_slots, kMaxSlots)),
      pool_(std::pmr::pool_options{/*max_blocks_per_chunk=*/256,
                                   /*largest_required_pool_block=*/256}) {
  slots_.reserve(std::min<uint32_t>(max_slots_, 64));  // grows by doubling
}

Registry::Entry* Registry::find(ompi_cr_handle_t h, Kind kind, uint32_t* idx_out) {
  if (h <= 0) return nullptr;
  const uint32_t raw = static_cast<uint32_t>(h);
  const uint32_t idx = (raw & ((uint32_t{1} << kIndexBits) - 1)) - 1;
  const uint32_t gen = raw >> kIndexBits;
  if (idx >= slots_.size()) return nullptr;
  Entry& e = slots_[idx];
  if (e.kind != kind || (e.gen & kGenMask) != gen) return nullptr;
  if (idx_out) *idx_out = idx;
  return &e;
}

uint32_t Registry::take_slot() {
  if (free_count_ < kReuseDistance && slots_.size() < max_slots_) {
    slots_.emplace_back();  // may throw; nothing changed then
    return static_cast<uint32_t>(slots_.size() - 1);
  }
  if (free_count_ == 0) return kNone;
  const uint32_t idx = free_head_;
  free_head_ = slots_[idx].next_free;
  if (free_head_ == kNone) free_tail_ = kNone;
  free_count_--;
  slots_[idx].next_free = kNone;
  return idx;
}

void Registry::free_slot(uint32_t idx) {
  Entry& e = slots_[idx];
  e.kind = kFree;
  e.gen = (e.gen + 1) & kGenMask;
  e.fn = nullptr;
  e.arg = nullptr;
  e.next_free = kNone;
  if (free_tail_ == kNone) {
    free_head_ = idx;
  } else {
    slots_[free_tail_].next_free = idx;
  }
  free_tail_ = idx;
  free_count_++;
}

int Registry::add_range(Kind kind, const void* addr, size_t len, ompi_cr_handle_t* handle) {
  if (!handle || !addr || len == 0) return OMPI_CR_ERR_INVALID;
  if (kind != kExclude && kind != kInclude && kind != kRecv) return OMPI_CR_ERR_INVALID;
  const uint64_t start = reinterpret_cast<uint64_t>(addr);
  if (len > kAddressLimit || start > kAddressLimit - len) return OMPI_CR_ERR_INVALID;
  const uint64_t end = start + len;

  std::lock_guard<std::mutex> lock(mu_);
  if (kind == kRecv) {
    // Buffers are disjoint, so only the one starting last before `end` can overlap.
    auto it = recv_by_start_.lower_bound(end);
    if (it != recv_by_start_.begin() && slots_[std::prev(it)->second].end > start)
      return OMPI_CR_ERR_CONFLICT;
  }
  uint32_t idx;
  try {
    idx = take_slot();
  } catch (const std::bad_alloc&) {
    return OMPI_CR_ERR_NOMEM;
  }
  if (idx == kNone) return OMPI_CR_ERR_NOMEM;
  if (kind == kRecv) {
    try {
      recv_by_start_.emplace(start, idx);
    } catch (const std::bad_alloc&) {
      free_slot(idx);
      return OMPI_CR_ERR_NOMEM;
    }
  }
  Entry& e = slots_[idx];
  e.start = start;
  e.end = end;
  e.data_start = e.data_end = 0;
  e.kind = kind;
  live_++;
  *handle = make_handle(idx, e.gen);
  return OMPI_CR_SUCCESS;
}

int Registry::remove_hint(ompi_cr_handle_t handle) {
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t idx;
  if (!find(handle, kExclude, &idx) && !find(handle, kInclude, &idx))
    return OMPI_CR_ERR_UNKNOWN_HANDLE;
  free_slot(idx);
  live_--;
  return OMPI_CR_SUCCESS;
}

int Registry::recv_set_data(ompi_cr_handle_t handle, size_t offset, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry* e = find(handle, kRecv);
  if (!e) return OMPI_CR_ERR_UNKNOWN_HANDLE;
  if (len == 0) {
    e->data_start = e->data_end = 0;
    return OMPI_CR_SUCCESS;
  }
  const uint64_t size = e->end - e->start;
  if (offset > size || len > size - offset) return OMPI_CR_ERR_INVALID;
  e->data_start = e->start + offset;
  e->data_end = e->data_start + len;
  return OMPI_CR_SUCCESS;
}

int Registry::recv_deregister(ompi_cr_handle_t handle) {
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t idx;
  Entry* e = find(handle, kRecv, &idx);
  if (!e) return OMPI_CR_ERR_UNKNOWN_HANDLE;
  recv_by_start_.erase(e->start);
  free_slot(idx);
  live_--;
  return OMPI_CR_SUCCESS;
}

int Registry::callback_register(ompi_cr_callback_fn fn, void* arg, ompi_cr_handle_t* handle) {
  if (!fn || !handle) return OMPI_CR_ERR_INVALID;
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t idx;
  try {
    // Grow the list first so that nothing can fail once the slot is taken.
    if (callbacks_.size() == callbacks_.capacity())
      callbacks_.reserve(std::max<size_t>(8, 2 * callbacks_.capacity()));
    idx = take_slot();
  } catch (const std::bad_alloc&) {
    return OMPI_CR_ERR_NOMEM;
  }
  if (idx == kNone) return OMPI_CR_ERR_NOMEM;
  callbacks_.push_back(idx);
  Entry& e = slots_[idx];
  e.kind = kCallback;
  e.fn = fn;
  e.arg = arg;
  e.order = next_order_++;
  live_++;
  *handle = make_handle(idx, e.gen);
  return OMPI_CR_SUCCESS;
}

int Registry::callback_unregister(ompi_cr_handle_t handle) {
  std::unique_lock<std::mutex> lock(mu_);
  uint32_t idx;
  if (!find(handle, kCallback, &idx)) return OMPI_CR_ERR_UNKNOWN_HANDLE;
  callbacks_.erase(std::find(callbacks_.begin(), callbacks_.end(), idx));
  free_slot(idx);
  live_--;
  // Keep the promise "not running after unregister returns", except for a callback that
  // unregisters itself (or another one) from inside a callback: that would wait for itself.
  if (!tls_in_callback) cb_done_.wait(lock, [&] { return running_callback_ != handle; });
  return OMPI_CR_SUCCESS;
}

void Registry::run_callbacks(ompi_cr_phase_t phase) {
  if (phase != OMPI_CR_PHASE_CHECKPOINT && phase != OMPI_CR_PHASE_CONTINUE &&
      phase != OMPI_CR_PHASE_RESTART)
    return;
  const bool forward = phase == OMPI_CR_PHASE_CHECKPOINT;
  uint64_t limit;
  {
    std::lock_guard<std::mutex> lock(mu_);
    limit = next_order_;  // callbacks registered from now on wait for the next phase
  }
  // The next callback is looked up under the lock each time, so (un)registrations by the
  // callbacks themselves or by other threads take effect at once, and nothing is copied.
  uint64_t cursor = forward ? 0 : limit;
  for (;;) {
    ompi_cr_callback_fn fn = nullptr;
    void* arg = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      uint32_t best = kNone;
      for (uint32_t idx : callbacks_) {
        const uint64_t o = slots_[idx].order;
        const bool eligible = forward ? (o > cursor && o < limit) : (o < cursor);
        if (!eligible) continue;
        if (best == kNone || (forward ? o < slots_[best].order : o > slots_[best].order))
          best = idx;
      }
      if (best == kNone) break;
      const Entry& e = slots_[best];
      cursor = e.order;
      fn = e.fn;
      arg = e.arg;
      running_callback_ = make_handle(best, e.gen);
    }
    const bool was_in_callback = tls_in_callback;
    tls_in_callback = true;
    fn(phase, arg);
    tls_in_callback = was_in_callback;
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_callback_ = 0;
    }
    cb_done_.notify_all();
  }
}

void Registry::collect(std::pmr::memory_resource* mr, std::pmr::vector<ExcludedRange>& out) {
  std::pmr::vector<TaggedRange> excludes(mr);
  std::pmr::vector<ByteRange> keeps(mr);
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t nex = 0, nkeep = 0;
    for (const Entry& e : slots_) {
      if (e.kind == kExclude) nex++;
      if (e.kind == kInclude) nkeep++;
      if (e.kind == kRecv) {
        nex += 2;
        nkeep++;
      }
    }
    excludes.reserve(nex);
    keeps.reserve(nkeep);
    for (const Entry& e : slots_) {
      switch (e.kind) {
        case kExclude:
          excludes.push_back({e.start, e.end, OCR_SKIP_HINTED});
          break;
        case kInclude:
          keeps.push_back({e.start, e.end});
          break;
        case kRecv:
          if (e.data_start == e.data_end) {
            excludes.push_back({e.start, e.end, OCR_SKIP_RECV_BUFFER});
          } else {
            if (e.start < e.data_start)
              excludes.push_back({e.start, e.data_start, OCR_SKIP_RECV_BUFFER});
            if (e.data_end < e.end) excludes.push_back({e.data_end, e.end, OCR_SKIP_RECV_BUFFER});
            // Message data is always saved, also inside exclude hints: a received message
            // must never be lost.
            keeps.push_back({e.data_start, e.data_end});
          }
          break;
        default:
          break;
      }
    }
  }
  compute_exclusions(excludes, keeps, mr, out);
}

size_t Registry::live() {
  std::lock_guard<std::mutex> lock(mu_);
  return live_;
}

void Registry::fork_child() {
  mu_.unlock();
  // A callback running on the parent's agent thread does not exist here, and a condition
  // variable with waiters that do not exist here is better started afresh.
  running_callback_ = 0;
  new (&cb_done_) std::condition_variable();
}

}  // namespace ocr::hints
