// Communicators as the protocol sees them: a job-unique id (the same number on every
// member), the number of collectives entered (the "collective clock" of DESIGN.md §5),
// the world rank of every member (message counters are kept per world peer), and the
// messages drained from it at checkpoints that the application has not received yet.
#pragma once

#include <mpi.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <vector>

namespace ocr::crcp {

struct DrainedMessage;

struct CommInfo {
  MPI_Comm handle = MPI_COMM_NULL;  // the application's handle
  uint64_t id = 0;
  std::atomic<uint64_t> seq{0};  // collectives entered on this communicator
  int size = 0, rank = 0;
  std::vector<int> world;  // comm rank -> world rank
  int min_world = 0;       // identifies one of the communicators a split creates
  // Drained messages in arrival order. `ndrained` is read on every receive: 0 almost always.
  std::atomic<uint32_t> ndrained{0};
  DrainedMessage* drained_head = nullptr;
  DrainedMessage* drained_tail = nullptr;
  // Proxy mode: the proxy's id of this communicator; proxy_born: created after the
  // restart (no object of the old library behind the handle); Cartesian topology kept
  // here so that topology queries on such communicators need no library.
  int64_t proxy_id = -1;
  bool proxy_born = false;
  // Not a communicator: the members of an MPI_Comm_create_group call, counted like a
  // communicator's collectives (the call completes only when every member makes it).
  bool pseudo = false;
  std::vector<int> cart_dims, cart_periods;
  // MPI_Comm_create_group calls on this parent per (tag, group): part of the child's id.
  std::map<std::pair<int, uint64_t>, uint64_t> create_group_calls;

  int world_of(int comm_rank) const {
    return comm_rank >= 0 && comm_rank < size ? world[static_cast<size_t>(comm_rank)] : -1;
  }
};

// The communicator behind an application handle, or nullptr if it was not created through
// a wrapped call (then the caller fails loudly).
CommInfo* comm_lookup(MPI_Comm comm);
// Looks the handle up and aborts the job with a message naming `call` if it is unknown.
CommInfo* comm_require(MPI_Comm comm, const char* call);
// Registers a communicator the library created (members are read from the library).
CommInfo* comm_register(MPI_Comm comm, uint64_t id);
// Registers a communicator whose members are known already (proxy mode: no local object).
CommInfo* comm_register_known(MPI_Comm comm, uint64_t id, int size, int rank,
                              const std::vector<int>& world);
void comm_unregister(MPI_Comm comm);
// (id, collectives entered) of every communicator this rank has freed.
std::vector<std::pair<uint64_t, uint64_t>> comm_retired();
// The pseudo-communicator of the MPI_Comm_create_group calls with this key (created on
// first use with these world ranks as members).
CommInfo* pseudo_comm(uint64_t key, const std::vector<int>& world);
// Every registered communicator; the callback must not register or unregister.
void comm_for_each(void (*fn)(CommInfo*, void*), void* arg);

// Deterministic ids: every member computes the same value from what it knows alike.
uint64_t comm_id_mix(uint64_t a, uint64_t b);

}  // namespace ocr::crcp
