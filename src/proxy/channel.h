// The shared-memory call channel between a restored application process and its
// ompi-cr-proxy (DESIGN.md §3, proxy mode; docs/proxy.md). One file in /dev/shm, created
// by ompi-cr-restore before the restore, mapped by both sides:
//
//   Header (64 KiB) | slot 0 data | slot 1 data | ... | message arena (sparse)
//
// A slot carries one call at a time: the client writes the operation and its arguments,
// bumps `req`; the server runs it and bumps `resp`. Each side spins briefly and then
// sleeps on the word with a (process-shared) futex: the machine may have fewer cores than
// processes. Slot 0 serves the application's MPI calls, slot 1 the agent's PMIx rounds.
// Message payloads live in the arena as packed bytes; the client owns its allocation.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ocr::proxy {

constexpr uint64_t kChannelMagic = 0x31595850524f434full;  // "OCRPRXY1"
constexpr size_t kHeaderSize = 1 << 16;
constexpr size_t kSlotDataSize = 4 << 20;
constexpr int kSlots = 2;
constexpr size_t kArenaOffset = kHeaderSize + kSlots * kSlotDataSize;
constexpr size_t kArenaSize = size_t{16} << 30;  // address space only: the file is sparse
constexpr size_t kChannelSize = kArenaOffset + kArenaSize;
constexpr int kAppSlot = 0;
constexpr int kAgentSlot = 1;
constexpr int kArgs = 32;

enum class Op : uint32_t {
  kNone = 0,
  kIsend,        // a: off, bytes, dest, tag, comm, mode(0 std, 1 sync, 2 ready) -> r0 req
  kIrecv,        // a: off, cap, source, tag, comm -> r0 req
  kTest,         // a: req, wait_us -> r0 flag, r1 source, r2 tag, r3 bytes, r4 error, r5 cancelled
  kIprobe,       // a: source, tag, comm -> r0 flag, r1 source, r2 tag, r3 bytes
  kImprobe,      // a: source, tag, comm -> r0 flag, r1..r3 as Iprobe, r4 message
  kMrecv,        // a: message, off, cap -> r1..r5 as Test
  kRecv,         // a: off, cap, source, tag, comm -> r1..r5 as Test
  kCancel,       // a: req
  kRequestFree,  // a: req
  kBarrier,      // a: comm
  kBcast,        // a: off, bytes, root, comm
  kReduce,     // a: sendoff (-1: in place), recvoff, count, type, op, root, comm, kind(0 reduce, 1
               // allreduce, 2 scan, 3 exscan)
  kGather,     // a: sendoff, sendbytes, recvoff, root, comm, all(0/1); data: counts[], displs[]
               // (bytes) when a6 = 1 (v)
  kScatter,    // a: sendoff, recvoff, recvbytes, root, comm, v; data: counts[], displs[]
  kAlltoall,   // a: sendoff, bytes, recvoff, comm, v; data: scounts[], sdispls[], rcounts[],
               // rdispls[]
  kCommDup,    // a: comm -> r0 new comm, r1 size, r2 rank; data: world ranks
  kCommSplit,  // a: comm, color, key -> same (r0 = -1: MPI_COMM_NULL)
  kCommSplitType,  // a: comm, type, key
  kCommFromRanks,  // a: comm, n, tag, collective over parent (1) or group only (0); data: world
                   // ranks
  kCartCreate,     // a: comm, ndims, reorder; data: dims[], periods[]
  kCartSub,        // a: comm, ndims; data: remain[]
  kCommFree,       // a: comm
  kAbort,          // a: code
  kFinalize,
  kPmixAllgather,  // a: key length, blob length; data: key, blob -> data: n lengths then blobs
};

struct alignas(64) Slot {
  std::atomic<uint32_t> req{0};
  std::atomic<uint32_t> resp{0};
  std::atomic<uint32_t> server_sleeping{0};
  std::atomic<uint32_t> client_sleeping{0};
  Op op = Op::kNone;
  int32_t rc = 0;  // MPI error code of the call
  int64_t a[kArgs] = {};
  int64_t r[kArgs] = {};
};

struct Header {
  uint64_t magic;
  std::atomic<uint32_t> state;  // 0 starting, 1 ready, 2 failed, 3 finished
  int32_t rank, size;
  int32_t proxy_pid;
  int64_t mpirun_pid;
  char error[512];
  Slot slots[kSlots];
};
static_assert(sizeof(Header) <= kHeaderSize);

inline unsigned char* slot_data(void* base, int slot) {
  return static_cast<unsigned char*>(base) + kHeaderSize +
         static_cast<size_t>(slot) * kSlotDataSize;
}
inline unsigned char* arena(void* base) {
  return static_cast<unsigned char*>(base) + kArenaOffset;
}

inline void futex_wait_shared(std::atomic<uint32_t>* w, uint32_t expected) {
  timespec ts = {0, 100 * 1000 * 1000};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAIT, expected, &ts, nullptr, 0);
}
inline void futex_wake_shared(std::atomic<uint32_t>* w) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

// Waits until *w != seen: spin, then sleep (flag tells the other side to wake us).
inline uint32_t wait_change(std::atomic<uint32_t>* w, uint32_t seen,
                            std::atomic<uint32_t>* sleeping) {
  for (int i = 0; i < 200; i++) {
    uint32_t v = w->load(std::memory_order_acquire);
    if (v != seen) return v;
    __builtin_ia32_pause();
  }
  for (;;) {
    sleeping->store(1, std::memory_order_seq_cst);
    uint32_t v = w->load(std::memory_order_seq_cst);
    if (v != seen) {
      sleeping->store(0, std::memory_order_relaxed);
      return v;
    }
    futex_wait_shared(w, seen);
    sleeping->store(0, std::memory_order_relaxed);
    v = w->load(std::memory_order_acquire);
    if (v != seen) return v;
  }
}

inline void bump_and_wake(std::atomic<uint32_t>* w, std::atomic<uint32_t>* other_sleeping) {
  w->fetch_add(1, std::memory_order_seq_cst);
  if (other_sleeping->load(std::memory_order_seq_cst)) futex_wake_shared(w);
}

// The channel file of the proxy started by ompi-cr-restore with pid `restore_pid`.
inline void channel_path(char* buf, size_t cap, int restore_pid) {
  __builtin_snprintf(buf, cap, "/dev/shm/ompi-cr-proxy.%d", restore_pid);
}
// Part of every channel path: how later images recognise the mapping as MPI runtime.
constexpr const char* kChannelPathMarker = "/ompi-cr-proxy.";

}  // namespace ocr::proxy
