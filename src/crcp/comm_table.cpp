// Communicator registry: an open-addressing table keyed by the handle value. Lookups
// (every point-to-point call and collective) take no lock: slots are only ever filled,
// and a freed communicator leaves a tombstone.
#include "crcp/comm_table.h"

#include <mutex>

#include "crcp/crcp_abort.h"

namespace ocr::crcp {
namespace {

constexpr size_t kSlots = 8192;  // power of two; far more than live communicators
const MPI_Comm kTombstone = reinterpret_cast<MPI_Comm>(uintptr_t{1});

struct Slot {
  std::atomic<MPI_Comm> key{nullptr};
  std::atomic<CommInfo*> info{nullptr};
};

Slot g_slots[kSlots];
std::mutex g_mu;  // writers only
std::vector<std::pair<uint64_t, uint64_t>> g_retired;
MPI_Group g_world_group = MPI_GROUP_NULL;

size_t hash_of(MPI_Comm c) {
  uint64_t x = reinterpret_cast<uintptr_t>(c);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return static_cast<size_t>(x) & (kSlots - 1);
}

}  // namespace

uint64_t comm_id_mix(uint64_t a, uint64_t b) {
  uint64_t x = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x7f4a7c159e3779b9ULL + (a << 6) + (a >> 2));
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 29;
  return x ? x : 1;
}

CommInfo* comm_lookup(MPI_Comm comm) {
  for (size_t i = hash_of(comm), n = 0; n < kSlots; i = (i + 1) & (kSlots - 1), n++) {
    MPI_Comm k = g_slots[i].key.load(std::memory_order_acquire);
    if (k == comm) return g_slots[i].info.load(std::memory_order_acquire);
    if (k == nullptr) return nullptr;
  }
  return nullptr;
}

CommInfo* comm_require(MPI_Comm comm, const char* call) {
  CommInfo* c = comm_lookup(comm);
  if (!c)
    fatal("%s: communicator %p was not created through a call ompi-cr wraps", call,
          static_cast<void*>(comm));
  return c;
}

namespace {
CommInfo* insert(MPI_Comm comm, CommInfo* info);
}

CommInfo* comm_register(MPI_Comm comm, uint64_t id) {
  int size = 0, rank = 0;
  PMPI_Comm_size(comm, &size);
  PMPI_Comm_rank(comm, &rank);
  if (g_world_group == MPI_GROUP_NULL) PMPI_Comm_group(MPI_COMM_WORLD, &g_world_group);
  MPI_Group g;
  PMPI_Comm_group(comm, &g);
  std::vector<int> ranks(static_cast<size_t>(size)), world(static_cast<size_t>(size));
  for (int i = 0; i < size; i++) ranks[static_cast<size_t>(i)] = i;
  PMPI_Group_translate_ranks(g, size, ranks.data(), g_world_group, world.data());
  PMPI_Group_free(&g);
  return comm_register_known(comm, id, size, rank, world);
}

CommInfo* comm_register_known(MPI_Comm comm, uint64_t id, int size, int rank,
                              const std::vector<int>& world) {
  auto* info = new CommInfo;
  info->handle = comm;
  info->id = id;
  info->size = size;
  info->rank = rank;
  info->world = world;
  info->min_world = info->world.empty() ? 0 : info->world[0];
  for (int w : info->world) info->min_world = std::min(info->min_world, w);
  return insert(comm, info);
}

namespace {
CommInfo* insert(MPI_Comm comm, CommInfo* info) {
  std::lock_guard<std::mutex> lk(g_mu);
  size_t tomb = kSlots;
  for (size_t i = hash_of(comm), n = 0; n < kSlots; i = (i + 1) & (kSlots - 1), n++) {
    MPI_Comm k = g_slots[i].key.load(std::memory_order_relaxed);
    if (k == comm) {  // the library reused a freed handle value that was never unregistered
      g_slots[i].info.store(info, std::memory_order_release);
      return info;
    }
    if (k == kTombstone && tomb == kSlots) tomb = i;
    if (k == nullptr) {
      size_t at = tomb != kSlots ? tomb : i;
      g_slots[at].info.store(info, std::memory_order_release);
      g_slots[at].key.store(comm, std::memory_order_release);
      return info;
    }
  }
  if (tomb != kSlots) {
    g_slots[tomb].info.store(info, std::memory_order_release);
    g_slots[tomb].key.store(comm, std::memory_order_release);
    return info;
  }
  fatal("more than %zu communicators", kSlots);
}
}  // namespace

void comm_unregister(MPI_Comm comm) {
  std::lock_guard<std::mutex> lk(g_mu);
  for (size_t i = hash_of(comm), n = 0; n < kSlots; i = (i + 1) & (kSlots - 1), n++) {
    MPI_Comm k = g_slots[i].key.load(std::memory_order_relaxed);
    if (k == nullptr) return;
    if (k == comm) {
      // The CommInfo stays allocated: a concurrent reader may still hold it, and drained
      // messages of a freed communicator can never be received anyway.
      if (CommInfo* c = g_slots[i].info.load())
        g_retired.emplace_back(c->id, c->seq.load(std::memory_order_relaxed));
      g_slots[i].info.store(nullptr, std::memory_order_release);
      g_slots[i].key.store(kTombstone, std::memory_order_release);
      return;
    }
  }
}

std::vector<std::pair<uint64_t, uint64_t>> comm_retired() {
  std::lock_guard<std::mutex> lk(g_mu);
  return g_retired;
}

CommInfo* pseudo_comm(uint64_t key, const std::vector<int>& world) {
  static std::mutex mu;
  static std::map<uint64_t, CommInfo*> all;
  std::lock_guard<std::mutex> lk(mu);
  CommInfo*& c = all[key];
  if (!c) {
    // A unique address of ours serves as its handle in the table; never given out.
    auto handle = reinterpret_cast<MPI_Comm>(new char[1]);
    c = comm_register_known(handle, key, static_cast<int>(world.size()), 0, world);
    c->pseudo = true;
  }
  return c;
}

void comm_for_each(void (*fn)(CommInfo*, void*), void* arg) {
  for (Slot& s : g_slots) {
    MPI_Comm k = s.key.load(std::memory_order_acquire);
    if (k == nullptr || k == kTombstone) continue;
    if (CommInfo* c = s.info.load(std::memory_order_acquire)) fn(c, arg);
  }
}

}  // namespace ocr::crcp
