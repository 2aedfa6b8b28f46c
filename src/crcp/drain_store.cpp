// Drained-message queues (see drain_store.h).
#include "crcp/drain_store.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "crcp/comm_table.h"

namespace ocr::crcp {
namespace {
std::mutex g_mu;  // drains run on one thread, receives may run on others (THREAD_MULTIPLE)

bool matches(const DrainedMessage* m, int source, int tag) {
  return (source == MPI_ANY_SOURCE || source == m->source) && (tag == MPI_ANY_TAG || tag == m->tag);
}
}  // namespace

void drain_push(CommInfo* comm, int source, int tag, char* data, size_t bytes) {
  auto* m = new DrainedMessage{source, tag, bytes, data, nullptr};
  std::lock_guard<std::mutex> lk(g_mu);
  if (comm->drained_tail)
    comm->drained_tail->next = m;
  else
    comm->drained_head = m;
  comm->drained_tail = m;
  comm->ndrained.fetch_add(1, std::memory_order_release);
}

DrainedMessage* drain_match(CommInfo* comm, int source, int tag, bool remove) {
  std::lock_guard<std::mutex> lk(g_mu);
  DrainedMessage* prev = nullptr;
  for (DrainedMessage* m = comm->drained_head; m; prev = m, m = m->next) {
    if (!matches(m, source, tag)) continue;
    if (remove) {
      if (prev)
        prev->next = m->next;
      else
        comm->drained_head = m->next;
      if (comm->drained_tail == m) comm->drained_tail = prev;
      m->next = nullptr;
      comm->ndrained.fetch_sub(1, std::memory_order_release);
    }
    return m;
  }
  return nullptr;
}

void drain_free(DrainedMessage* m) {
  free(m->data);
  delete m;
}

void drain_probe_status(const DrainedMessage* m, MPI_Status* status) {
  if (status == MPI_STATUS_IGNORE) return;
  status->MPI_SOURCE = m->source;
  status->MPI_TAG = m->tag;
  status->MPI_ERROR = MPI_SUCCESS;
  PMPI_Status_set_elements_x(status, MPI_BYTE, static_cast<MPI_Count>(m->bytes));
  PMPI_Status_set_cancelled(status, 0);
}

int drain_deliver(const DrainedMessage* m, CommInfo* comm, void* buf, int count,
                  MPI_Datatype datatype, MPI_Status* status) {
  // Drained bytes are the sender's packed representation (homogeneous cluster: Open MPI's
  // native pack format), so unpacking with the receive's datatype places them exactly as
  // the library would have.
  int capacity = 0;
  PMPI_Pack_size(count, datatype, comm->handle, &capacity);
  int rc = MPI_SUCCESS;
  size_t take = m->bytes;
  if (take > static_cast<size_t>(capacity)) {
    take = static_cast<size_t>(capacity);
    rc = MPI_ERR_TRUNCATE;
  }
  if (take > 0) {
    int type_size = 0;
    PMPI_Type_size(datatype, &type_size);
    int elements = type_size > 0 ? static_cast<int>(take / static_cast<size_t>(type_size)) : 0;
    int pos = 0;
    PMPI_Unpack(m->data, static_cast<int>(take), &pos, buf, elements, datatype, comm->handle);
    // A trailing partial element (only possible for a mismatched datatype) is dropped, as
    // the library would leave it undefined.
  }
  if (status != MPI_STATUS_IGNORE) {
    drain_probe_status(m, status);
    PMPI_Status_set_elements_x(status, MPI_BYTE, static_cast<MPI_Count>(take));
    status->MPI_ERROR = rc;
  }
  return rc;
}

}  // namespace ocr::crcp
