// Messages the checkpoint protocol received on the application's behalf (point-to-point
// drain, DESIGN.md §5). They are kept per communicator in arrival order, as packed bytes
// with their envelope, in application memory; receives and probes look here before they
// ask the library, which keeps MPI's non-overtaking order.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>

namespace ocr::crcp {

struct CommInfo;

struct DrainedMessage {
  int source = 0;  // comm rank
  int tag = 0;
  size_t bytes = 0;
  char* data = nullptr;
  DrainedMessage* next = nullptr;
};

// Appends a message (takes ownership of data, allocated with malloc).
void drain_push(CommInfo* comm, int source, int tag, char* data, size_t bytes);
// The first drained message matching (source, tag) (wildcards allowed), or nullptr.
// `remove` unlinks it (the caller then owns it and frees it with drain_free).
DrainedMessage* drain_match(CommInfo* comm, int source, int tag, bool remove);
void drain_free(DrainedMessage* m);
// Copies a drained message into a receive buffer and fills the status as the library
// would (source, tag, error, count). Returns MPI_SUCCESS or MPI_ERR_TRUNCATE.
int drain_deliver(const DrainedMessage* m, CommInfo* comm, void* buf, int count,
                  MPI_Datatype datatype, MPI_Status* status);
// Fills a status for a probe that found a drained message.
void drain_probe_status(const DrainedMessage* m, MPI_Status* status);

}  // namespace ocr::crcp
