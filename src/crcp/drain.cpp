// The drain step of a parked rank (DESIGN.md §5, "Point-to-point drain"): complete what
// the library can complete, take over messages matched by MPI_Mprobe, and receive every
// message in flight towards this rank into drain buffers in application memory. Run
// repeatedly by the park loop until the agents see every counter pair balanced.
#include <cstdlib>

#include "crcp/backend.h"
#include "crcp/comm_table.h"
#include "crcp/completion.h"
#include "crcp/drain_store.h"
#include "crcp/protocol_state.h"
#include "crcp/vrequest.h"

namespace ocr::crcp {
namespace {

void drain_comm(CommInfo* c, void*) {
  if (c->pseudo) return;
  for (;;) {
    int flag = 0;
    MPI_Status st;
    be_iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, c, &flag, &st);
    if (!flag) return;
    int bytes = 0;
    PMPI_Get_count(&st, MPI_BYTE, &bytes);
    char* data = bytes > 0 ? static_cast<char*>(malloc(static_cast<size_t>(bytes))) : nullptr;
    be_recv_probed(data, bytes, st.MPI_SOURCE, st.MPI_TAG, c);
    drain_push(c, st.MPI_SOURCE, st.MPI_TAG, data, static_cast<size_t>(bytes));
    count_recv(c, st.MPI_SOURCE);
    g_proto.counters.drained_messages.fetch_add(1, std::memory_order_relaxed);
    g_proto.counters.drained_bytes.fetch_add(static_cast<uint64_t>(bytes),
                                             std::memory_order_relaxed);
  }
}

}  // namespace

uint64_t drain_step() {
  uint64_t incomplete = 0;
  lists_lock();
  for (VRequest* r = active_first(); r; r = r->next) {
    if (r->done || r->real == MPI_REQUEST_NULL || !r->active) continue;
    int flag = 0;
    MPI_Status st;
    be_test(&r->real, &flag, &st);
    if (flag)
      vreq_completed(r, st);
    else if (r->kind != ReqKind::kRecv || r->counted)  // counted: an Imrecv in transfer
      incomplete++;
  }
  lists_unlock();
  // Messages an application matched with MPI_(I)mprobe but has not received: receive them
  // now so that no message is left inside the library at the cut.
  for (VMessage* m = vmsg_first(); m; m = m->next) {
    if (m->drained || m->real == MPI_MESSAGE_NULL || m->real == MPI_MESSAGE_NO_PROC) continue;
    int bytes = 0;
    PMPI_Get_count(&m->status, MPI_BYTE, &bytes);
    char* data = bytes > 0 ? static_cast<char*>(malloc(static_cast<size_t>(bytes))) : nullptr;
    be_mrecv(data, bytes, MPI_BYTE, &m->real, MPI_STATUS_IGNORE);
    m->drained = new DrainedMessage{m->status.MPI_SOURCE, m->status.MPI_TAG,
                                    static_cast<size_t>(bytes), data, nullptr};
  }
  comm_for_each(drain_comm, nullptr);
  return incomplete;
}

std::vector<PostedReceive> posted_receives() {
  std::vector<PostedReceive> out;
  lists_lock();
  for (VRequest* r = active_first(); r; r = r->next) {
    if (r->kind != ReqKind::kRecv || r->done || r->real == MPI_REQUEST_NULL || r->count <= 0)
      continue;
    MPI_Aint lb = 0, extent = 0, true_lb = 0, true_extent = 0;
    PMPI_Type_get_extent(r->datatype, &lb, &extent);
    PMPI_Type_get_true_extent(r->datatype, &true_lb, &true_extent);
    if (true_extent <= 0) continue;
    const size_t span = static_cast<size_t>((r->count - 1) * extent + true_extent);
    // Only a contiguous buffer is all message: a strided one (a matrix column) spans data
    // the message does not overwrite, which must be saved.
    int type_size = 0;
    PMPI_Type_size(r->datatype, &type_size);
    if (static_cast<size_t>(type_size) * static_cast<size_t>(r->count) != span) continue;
    out.push_back({static_cast<char*>(r->buf) + true_lb, span});
  }
  lists_unlock();
  return out;
}

}  // namespace ocr::crcp
