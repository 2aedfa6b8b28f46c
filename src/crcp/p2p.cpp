// Point-to-point wrappers (the "custom" category of spec/wrap_spec.txt). Sends are counted
// per destination world rank when posted; receives when they complete. Every receive and
// probe looks at the drained messages of its communicator first. Blocking sends stay
// blocking (a parked receiver drains, so they always finish); blocking receives and probes
// run as a nonblocking call plus a test loop whose iterations are safe points.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "crcp/backend.h"
#include "crcp/comm_table.h"
#include "crcp/completion.h"
#include "crcp/crcp_abort.h"
#include "crcp/crcp_custom.h"
#include "crcp/crcp_hooks.h"
#include "crcp/drain_store.h"
#include "crcp/protocol_state.h"

using namespace ocr::crcp;

namespace {

// A receive served from the drain store, if a drained message matches.
bool recv_from_drain(CommInfo* c, void* buf, int count, MPI_Datatype dt, int source, int tag,
                     MPI_Status* status, int* rc) {
  if (c->ndrained.load(std::memory_order_acquire) == 0) return false;
  DrainedMessage* m = drain_match(c, source, tag, true);
  if (!m) return false;
  *rc = drain_deliver(m, c, buf, count, dt, status);
  drain_free(m);
  return true;
}

// Posts a receive (or completes it from the drain store) into r.
int post_recv(VRequest* r, void* buf, int count, MPI_Datatype dt, int source, int tag,
              MPI_Comm comm) {
  r->buf = buf;
  r->count = count;
  r->datatype = dt;
  r->peer = source;
  r->tag = tag;
  r->active = true;
  int rc = MPI_SUCCESS;
  MPI_Status st;
  if (source != MPI_PROC_NULL && recv_from_drain(r->comm, buf, count, dt, source, tag, &st, &rc)) {
    r->done = true;
    r->counted = true;  // counted when it was drained
    r->status = st;
    return MPI_SUCCESS;
  }
  (void)comm;
  return be_irecv(buf, count, dt, source, tag, r->comm, &r->real);
}

int blocking_recv(void* buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm,
                  MPI_Status* status, const char* call) {
  ocr_crcp_safe_point();
  CommInfo* c = comm_require(comm, call);
  if (!proxied() && c->ndrained.load(std::memory_order_acquire) == 0) {
    // The common case, kept short (it is what ping-pong latency measures): the library's
    // request and a test loop; only a checkpoint arriving meanwhile takes the general path.
    MPI_Request real;
    int rc = PMPI_Irecv(buf, count, dt, source, tag, comm, &real);
    if (rc != MPI_SUCCESS) return rc;
    MPI_Status st;
    for (;;) {
      int flag = 0;
      PMPI_Test(&real, &flag, &st);
      if (flag) {
        if (!status_cancelled(st) && st.MPI_SOURCE >= 0) count_recv(c, st.MPI_SOURCE);
        if (status != MPI_STATUS_IGNORE) *status = st;
        return st.MPI_ERROR == MPI_ERR_TRUNCATE ? MPI_ERR_TRUNCATE : MPI_SUCCESS;
      }
      if (checkpoint_pending()) {
        VRequest r;
        r.kind = ReqKind::kRecv;
        r.comm = c;
        r.buf = buf;
        r.count = count;
        r.datatype = dt;
        r.peer = source;
        r.tag = tag;
        r.active = true;
        r.real = real;
        VRequest* rs[1] = {&r};
        wait_all_internal(rs, 1);
        if (status != MPI_STATUS_IGNORE) *status = r.status;
        r.magic = 0;
        return r.status.MPI_ERROR == MPI_ERR_TRUNCATE ? MPI_ERR_TRUNCATE : MPI_SUCCESS;
      }
    }
  }
  VRequest r;  // on the stack: on the active list only while this thread is parked
  r.kind = ReqKind::kRecv;
  r.comm = c;
  int rc = post_recv(&r, buf, count, dt, source, tag, comm);
  if (rc != MPI_SUCCESS) return rc;
  VRequest* rs[1] = {&r};
  wait_all_internal(rs, 1);
  if (status != MPI_STATUS_IGNORE) *status = r.status;
  r.magic = 0;
  return r.status.MPI_ERROR == MPI_ERR_TRUNCATE ? MPI_ERR_TRUNCATE : MPI_SUCCESS;
}

int nonblocking_send(SendMode mode, const void* buf, int count, MPI_Datatype dt, int dest, int tag,
                     MPI_Comm comm, MPI_Request* request, const char* call) {
  ocr_crcp_safe_point();
  CommInfo* c = comm_require(comm, call);
  VRequest* r = vreq_new(ReqKind::kSend, c);
  r->peer = dest;
  r->tag = tag;
  r->active = true;
  count_send(c, dest);
  int rc = be_isend(buf, count, dt, dest, tag, c, mode, &r->real);
  if (rc != MPI_SUCCESS) {
    vreq_delete(r);
    return rc;
  }
  active_add(r);
  *request = handle_of(r);
  return rc;
}

int send_init(SendMode mode, const void* buf, int count, MPI_Datatype dt, int dest, int tag,
              MPI_Comm comm, MPI_Request* request, const char* call) {
  ocr_crcp_safe_point();
  CommInfo* c = comm_require(comm, call);
  VRequest* r = vreq_new(ReqKind::kSend, c);
  r->persistent = true;
  r->buf = const_cast<void*>(buf);
  r->count = count;
  r->datatype = dt;
  r->peer = dest;
  r->tag = tag;
  r->send_mode = static_cast<uint8_t>(mode);
  // Proxy mode: each start posts a new send (there is no persistent object in the proxy).
  int rc = MPI_SUCCESS;
  if (!proxied()) {
    switch (mode) {
      case kSync:
        rc = PMPI_Ssend_init(buf, count, dt, dest, tag, comm, &r->real);
        break;
      case kReady:
        rc = PMPI_Rsend_init(buf, count, dt, dest, tag, comm, &r->real);
        break;
      case kBuffered:
        rc = PMPI_Bsend_init(buf, count, dt, dest, tag, comm, &r->real);
        break;
      default:
        rc = PMPI_Send_init(buf, count, dt, dest, tag, comm, &r->real);
        break;
    }
  }
  if (rc != MPI_SUCCESS) {
    vreq_delete(r);
    return rc;
  }
  *request = handle_of(r);
  return rc;
}

int start_one(MPI_Request* request, const char* call) {
  VRequest* r = vreq_of(*request, call);
  if (!r || !r->persistent) fatal("%s: not a persistent request", call);
  r->done = false;
  r->counted = false;
  r->active = true;
  if (r->kind == ReqKind::kRecv) {
    MPI_Status st;
    int rc = MPI_SUCCESS;
    if (r->peer != MPI_PROC_NULL &&
        recv_from_drain(r->comm, r->buf, r->count, r->datatype, r->peer, r->tag, &st, &rc)) {
      r->done = true;
      r->counted = true;
      r->status = st;
      active_add(r);
      return MPI_SUCCESS;
    }
  } else {
    count_send(r->comm, r->peer);
  }
  int rc;
  if (!proxied())
    rc = PMPI_Start(&r->real);
  else if (r->kind == ReqKind::kRecv)
    rc = be_irecv(r->buf, r->count, r->datatype, r->peer, r->tag, r->comm, &r->real);
  else
    rc = be_isend(r->buf, r->count, r->datatype, r->peer, r->tag, r->comm,
                  static_cast<SendMode>(r->send_mode), &r->real);
  if (rc == MPI_SUCCESS) active_add(r);
  return rc;
}

}  // namespace

extern "C" {

int ocr_crcp_MPI_Send(const void* buf, int count, MPI_Datatype dt, int dest, int tag,
                      MPI_Comm comm) {
  ocr_crcp_safe_point();
  CommInfo* c = comm_require(comm, "MPI_Send");
  count_send(c, dest);
  return be_send(buf, count, dt, dest, tag, c, kStandard);
}

int ocr_crcp_MPI_Ssend(const void* buf, int count, MPI_Datatype dt, int dest, int tag,
                       MPI_Comm comm) {
  ocr_crcp_safe_point();
  CommInfo* c = comm_require(comm, "MPI_Ssend");
  count_send(c, dest);
  return be_send(buf, count, dt, dest, tag, c, kSync);
}

int ocr_crcp_MPI_Rsend(const void* buf, int count, MPI_Datatype dt, int dest, int tag,
                       MPI_Comm comm) {
  ocr_crcp_safe_point();
  CommInfo* c = comm_require(comm, "MPI_Rsend");
  count_send(c, dest);
  return be_send(buf, count, dt, dest, tag, c, kReady);
}

int ocr_crcp_MPI_Bsend(const void* buf, int count, MPI_Datatype dt, int dest, int tag,
                       MPI_Comm comm) {
  ocr_crcp_safe_point();
  CommInfo* c = comm_require(comm, "MPI_Bsend");
  count_send(c, dest);
  return be_send(buf, count, dt, dest, tag, c, kBuffered);
}

int ocr_crcp_MPI_Isend(const void* buf, int count, MPI_Datatype dt, int dest, int tag,
                       MPI_Comm comm, MPI_Request* request) {
  return nonblocking_send(kStandard, buf, count, dt, dest, tag, comm, request, "MPI_Isend");
}
int ocr_crcp_MPI_Issend(const void* buf, int count, MPI_Datatype dt, int dest, int tag,
                        MPI_Comm comm, MPI_Request* request) {
  return nonblocking_send(kSync, buf, count, dt, dest, tag, comm, request, "MPI_Issend");
}
int ocr_crcp_MPI_Irsend(const void* buf, int count, MPI_Datatype dt, int dest, int tag,
                        MPI_Comm comm, MPI_Request* request) {
  return nonblocking_send(kReady, buf, count, dt, dest, tag, comm, request, "MPI_Irsend");
}
int ocr_crcp_MPI_Ibsend(const void* buf, int count, MPI_Datatype dt, int dest, int tag,
                        MPI_Comm comm, MPI_Request* request) {
  return nonblocking_send(kBuffered, buf, count, dt, dest, tag, comm, request, "MPI_Ibsend");
}

int ocr_crcp_MPI_Recv(void* buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm,
                      MPI_Status* status) {
  return blocking_recv(buf, count, dt, source, tag, comm, status, "MPI_Recv");
}

int ocr_crcp_MPI_Irecv(void* buf, int count, MPI_Datatype dt, int source, int tag, MPI_Comm comm,
                       MPI_Request* request) {
  ocr_crcp_safe_point();
  CommInfo* c = comm_require(comm, "MPI_Irecv");
  VRequest* r = vreq_new(ReqKind::kRecv, c);
  int rc = post_recv(r, buf, count, dt, source, tag, comm);
  if (rc != MPI_SUCCESS) {
    vreq_delete(r);
    return rc;
  }
  active_add(r);
  *request = handle_of(r);
  return rc;
}

int ocr_crcp_MPI_Sendrecv(const void* sendbuf, int sendcount, MPI_Datatype sendtype, int dest,
                          int sendtag, void* recvbuf, int recvcount, MPI_Datatype recvtype,
                          int source, int recvtag, MPI_Comm comm, MPI_Status* status) {
  ocr_crcp_safe_point();
  CommInfo* c = comm_require(comm, "MPI_Sendrecv");
  VRequest rr, sr;
  rr.kind = ReqKind::kRecv;
  rr.comm = c;
  sr.kind = ReqKind::kSend;
  sr.comm = c;
  sr.peer = dest;
  sr.active = true;
  int rc = post_recv(&rr, recvbuf, recvcount, recvtype, source, recvtag, comm);
  if (rc != MPI_SUCCESS) return rc;
  count_send(c, dest);
  rc = be_isend(sendbuf, sendcount, sendtype, dest, sendtag, c, kStandard, &sr.real);
  if (rc != MPI_SUCCESS) return rc;
  VRequest* rs[2] = {&rr, &sr};
  wait_all_internal(rs, 2);
  if (status != MPI_STATUS_IGNORE) *status = rr.status;
  rr.magic = sr.magic = 0;
  return rr.status.MPI_ERROR == MPI_ERR_TRUNCATE ? MPI_ERR_TRUNCATE : MPI_SUCCESS;
}

int ocr_crcp_MPI_Sendrecv_replace(void* buf, int count, MPI_Datatype datatype, int dest,
                                  int sendtag, int source, int recvtag, MPI_Comm comm,
                                  MPI_Status* status) {
  // The outgoing data is packed first so that the receive may overwrite the buffer.
  int size = 0;
  PMPI_Pack_size(count, datatype, comm, &size);
  std::vector<char> packed(static_cast<size_t>(size > 0 ? size : 1));
  int pos = 0;
  PMPI_Pack(buf, count, datatype, packed.data(), size, &pos, comm);
  return ocr_crcp_MPI_Sendrecv(packed.data(), pos, MPI_PACKED, dest, sendtag, buf, count, datatype,
                               source, recvtag, comm, status);
}

int ocr_crcp_MPI_Iprobe(int source, int tag, MPI_Comm comm, int* flag, MPI_Status* status) {
  ocr_crcp_safe_point();
  CommInfo* c = comm_require(comm, "MPI_Iprobe");
  if (source != MPI_PROC_NULL && c->ndrained.load(std::memory_order_acquire)) {
    if (DrainedMessage* m = drain_match(c, source, tag, false)) {
      *flag = 1;
      drain_probe_status(m, status);
      return MPI_SUCCESS;
    }
  }
  return be_iprobe(source, tag, c, flag, status);
}

int ocr_crcp_MPI_Probe(int source, int tag, MPI_Comm comm, MPI_Status* status) {
  for (;;) {
    int flag = 0;
    int rc = ocr_crcp_MPI_Iprobe(source, tag, comm, &flag, status);
    if (rc != MPI_SUCCESS || flag) return rc;
    if (checkpoint_pending()) park_here();
  }
}

int ocr_crcp_MPI_Improbe(int source, int tag, MPI_Comm comm, int* flag, MPI_Message* message,
                         MPI_Status* status) {
  ocr_crcp_safe_point();
  CommInfo* c = comm_require(comm, "MPI_Improbe");
  if (source == MPI_PROC_NULL) {
    if (!proxied()) return PMPI_Improbe(source, tag, comm, flag, message, status);
    *flag = 1;
    *message = MPI_MESSAGE_NO_PROC;
    empty_status(status);
    if (status != MPI_STATUS_IGNORE) status->MPI_SOURCE = MPI_PROC_NULL;
    return MPI_SUCCESS;
  }
  if (c->ndrained.load(std::memory_order_acquire)) {
    if (DrainedMessage* m = drain_match(c, source, tag, true)) {
      VMessage* v = vmsg_new(c);
      v->drained = m;
      drain_probe_status(m, &v->status);
      if (status != MPI_STATUS_IGNORE) *status = v->status;
      *flag = 1;
      *message = reinterpret_cast<MPI_Message>(v);
      return MPI_SUCCESS;
    }
  }
  MPI_Message real = MPI_MESSAGE_NULL;
  MPI_Status st;
  int rc = be_improbe(source, tag, c, flag, &real, &st);
  if (rc != MPI_SUCCESS || !*flag) return rc;
  // The message left the library's matching: it counts as received now.
  count_recv(c, st.MPI_SOURCE);
  VMessage* v = vmsg_new(c);
  v->real = real;
  v->status = st;
  if (status != MPI_STATUS_IGNORE) *status = st;
  *message = reinterpret_cast<MPI_Message>(v);
  return MPI_SUCCESS;
}

int ocr_crcp_MPI_Mprobe(int source, int tag, MPI_Comm comm, MPI_Message* message,
                        MPI_Status* status) {
  for (;;) {
    int flag = 0;
    int rc = ocr_crcp_MPI_Improbe(source, tag, comm, &flag, message, status);
    if (rc != MPI_SUCCESS || flag) return rc;
    if (checkpoint_pending()) park_here();
  }
}

int ocr_crcp_MPI_Mrecv(void* buf, int count, MPI_Datatype dt, MPI_Message* message,
                       MPI_Status* status) {
  ocr_crcp_safe_point();
  if (*message == MPI_MESSAGE_NO_PROC || *message == MPI_MESSAGE_NULL) {
    if (!proxied()) return PMPI_Mrecv(buf, count, dt, message, status);
    empty_status(status);
    if (status != MPI_STATUS_IGNORE) status->MPI_SOURCE = MPI_PROC_NULL;
    *message = MPI_MESSAGE_NULL;
    return MPI_SUCCESS;
  }
  VMessage* v = vmsg_of(*message, "MPI_Mrecv");
  int rc;
  if (v->drained) {
    rc = drain_deliver(v->drained, v->comm, buf, count, dt, status);
    drain_free(v->drained);
  } else {
    rc = be_mrecv(buf, count, dt, &v->real, status);
  }
  vmsg_delete(v);
  *message = MPI_MESSAGE_NULL;
  return rc;
}

int ocr_crcp_MPI_Imrecv(void* buf, int count, MPI_Datatype dt, MPI_Message* message,
                        MPI_Request* request) {
  ocr_crcp_safe_point();
  if ((*message == MPI_MESSAGE_NO_PROC || *message == MPI_MESSAGE_NULL) && !proxied()) {
    // Completes at once with a PROC_NULL status; wrap it like any request.
    MPI_Request real;
    int rc = PMPI_Imrecv(buf, count, dt, message, &real);
    if (rc != MPI_SUCCESS) return rc;
    VRequest* r = vreq_new(ReqKind::kRecv, comm_require(MPI_COMM_SELF, "MPI_Imrecv"));
    r->real = real;
    r->active = true;
    r->counted = true;
    active_add(r);
    *request = handle_of(r);
    return rc;
  }
  if (*message == MPI_MESSAGE_NO_PROC || *message == MPI_MESSAGE_NULL) {
    VRequest* r = vreq_new(ReqKind::kRecv, comm_require(MPI_COMM_SELF, "MPI_Imrecv"));
    r->active = r->done = r->counted = true;
    empty_status(&r->status);
    r->status.MPI_SOURCE = MPI_PROC_NULL;
    *message = MPI_MESSAGE_NULL;
    active_add(r);
    *request = handle_of(r);
    return MPI_SUCCESS;
  }
  VMessage* v = vmsg_of(*message, "MPI_Imrecv");
  VRequest* r = vreq_new(ReqKind::kRecv, v->comm);
  r->buf = buf;
  r->count = count;
  r->datatype = dt;
  r->active = true;
  r->counted = true;  // counted when it was matched
  int rc = MPI_SUCCESS;
  if (v->drained) {
    MPI_Status st;
    rc = drain_deliver(v->drained, v->comm, buf, count, dt, &st);
    drain_free(v->drained);
    r->done = true;
    r->status = st;
    rc = MPI_SUCCESS;
  } else if (proxied()) {
    // The message is matched already: receiving it now is what the library would do.
    rc = be_mrecv(buf, count, dt, &v->real, &r->status);
    r->done = true;
  } else {
    rc = PMPI_Imrecv(buf, count, dt, &v->real, &r->real);
  }
  vmsg_delete(v);
  *message = MPI_MESSAGE_NULL;
  if (rc != MPI_SUCCESS) {
    vreq_delete(r);
    return rc;
  }
  active_add(r);
  *request = handle_of(r);
  return MPI_SUCCESS;
}

int ocr_crcp_MPI_Send_init(const void* buf, int count, MPI_Datatype dt, int dest, int tag,
                           MPI_Comm comm, MPI_Request* request) {
  return send_init(kStandard, buf, count, dt, dest, tag, comm, request, "MPI_Send_init");
}
int ocr_crcp_MPI_Ssend_init(const void* buf, int count, MPI_Datatype dt, int dest, int tag,
                            MPI_Comm comm, MPI_Request* request) {
  return send_init(kSync, buf, count, dt, dest, tag, comm, request, "MPI_Ssend_init");
}
int ocr_crcp_MPI_Rsend_init(const void* buf, int count, MPI_Datatype dt, int dest, int tag,
                            MPI_Comm comm, MPI_Request* request) {
  return send_init(kReady, buf, count, dt, dest, tag, comm, request, "MPI_Rsend_init");
}
int ocr_crcp_MPI_Bsend_init(const void* buf, int count, MPI_Datatype dt, int dest, int tag,
                            MPI_Comm comm, MPI_Request* request) {
  return send_init(kBuffered, buf, count, dt, dest, tag, comm, request, "MPI_Bsend_init");
}

int ocr_crcp_MPI_Recv_init(void* buf, int count, MPI_Datatype dt, int source, int tag,
                           MPI_Comm comm, MPI_Request* request) {
  ocr_crcp_safe_point();
  CommInfo* c = comm_require(comm, "MPI_Recv_init");
  VRequest* r = vreq_new(ReqKind::kRecv, c);
  r->persistent = true;
  r->buf = buf;
  r->count = count;
  r->datatype = dt;
  r->peer = source;
  r->tag = tag;
  int rc = proxied() ? MPI_SUCCESS : PMPI_Recv_init(buf, count, dt, source, tag, comm, &r->real);
  if (rc != MPI_SUCCESS) {
    vreq_delete(r);
    return rc;
  }
  *request = handle_of(r);
  return rc;
}

int ocr_crcp_MPI_Start(MPI_Request* request) {
  ocr_crcp_safe_point();
  return start_one(request, "MPI_Start");
}

int ocr_crcp_MPI_Startall(int count, MPI_Request requests[]) {
  ocr_crcp_safe_point();
  for (int i = 0; i < count; i++)
    if (int rc = start_one(&requests[i], "MPI_Startall"); rc != MPI_SUCCESS) return rc;
  return MPI_SUCCESS;
}

}  // extern "C"
