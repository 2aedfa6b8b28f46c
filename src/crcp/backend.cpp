// Direct and proxy implementations of the core's point-to-point operations (backend.h).
#include "crcp/backend.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "crcp/completion.h"
#include "crcp/crcp_abort.h"
#include "crcp/proxy_client.h"

extern "C" {
int ocr_crcp_proxied = 0;
}

namespace ocr::crcp {
namespace {

using proxy::Op;

struct ProxyRequest {
  static constexpr uint32_t kMagic = 0x4f435052;  // "OCPR"
  uint32_t magic = kMagic;
  int64_t id = 0;
  int64_t off = -1;  // arena block (send data or receive space)
  size_t cap = 0;
  bool recv = false;
  void* buf = nullptr;
  int count = 0;
  MPI_Datatype dt = MPI_DATATYPE_NULL;
};

// Buffered sends return at once; their proxy requests complete in the background.
std::mutex g_bg_mu;
std::vector<ProxyRequest*> g_background;

ProxyRequest* as_proxy(MPI_Request r) {
  auto* p = reinterpret_cast<ProxyRequest*>(r);
  if (!p || p->magic != ProxyRequest::kMagic) fatal("internal: not a proxy request");
  return p;
}

int64_t need_arena(size_t bytes) {
  int64_t off = arena_alloc(bytes);
  if (off < 0) fatal("the proxy channel's message arena is full (%zu bytes requested)", bytes);
  return off;
}

// Tests a proxy request; on completion unpacks a receive, frees the arena block.
// How long the proxy keeps testing a request a thread waits for before it answers.
constexpr int64_t kProxyWaitUs = 2000;

int proxy_test(ProxyRequest* p, int* flag, MPI_Status* status, int64_t wait_us = 0) {
  ProxyResult res = proxy_call(Op::kTest, {p->id, wait_us});
  *flag = static_cast<int>(res.r[0]);
  if (!*flag) return res.rc;
  int64_t r[5] = {res.r[1], res.r[2], res.r[3], res.r[4], res.r[5]};
  int rc = res.rc;
  if (p->recv && !r[4]) {
    int e = unpack_from_arena(p->off, static_cast<size_t>(r[2]), p->buf, p->count, p->dt);
    if (e != MPI_SUCCESS) r[3] = e;
  }
  if (status != MPI_STATUS_IGNORE) status_from_proxy(r, status);
  arena_free(p->off);
  p->magic = 0;
  delete p;
  return rc;
}

void progress_background() {
  std::lock_guard<std::mutex> lk(g_bg_mu);
  for (size_t i = 0; i < g_background.size();) {
    int flag = 0;
    proxy_test(g_background[i], &flag, MPI_STATUS_IGNORE);
    if (flag) {
      g_background[i] = g_background.back();
      g_background.pop_back();
    } else {
      i++;
    }
  }
}

int proxy_isend(const void* buf, int count, MPI_Datatype dt, int dest, int tag, CommInfo* c,
                SendMode mode, ProxyRequest** out) {
  auto* p = new ProxyRequest;
  size_t bytes = 0;
  p->off = pack_to_arena(buf, count, dt, &bytes);
  if (p->off < 0) fatal("the proxy channel's message arena is full");
  const int64_t m = mode == kSync ? 1 : mode == kReady ? 2 : 0;
  ProxyResult res =
      proxy_call(Op::kIsend, {p->off, static_cast<int64_t>(bytes), dest, tag, c->proxy_id, m});
  p->id = res.r[0];
  *out = p;
  return res.rc;
}

}  // namespace

size_t pack_size(int count, MPI_Datatype dt) {
  int n = 0;
  PMPI_Pack_size(count, dt, MPI_COMM_WORLD, &n);
  return static_cast<size_t>(n);
}

int64_t pack_to_arena(const void* buf, int count, MPI_Datatype dt, size_t* bytes) {
  size_t cap = pack_size(count, dt);
  int64_t off = need_arena(cap);
  int pos = 0;
  if (cap > 0)
    PMPI_Pack(buf, count, dt, arena_at(off), static_cast<int>(cap), &pos, MPI_COMM_WORLD);
  *bytes = static_cast<size_t>(pos);
  return off;
}

int unpack_from_arena(int64_t off, size_t bytes, void* buf, int count, MPI_Datatype dt) {
  size_t cap = pack_size(count, dt);
  int rc = MPI_SUCCESS;
  if (bytes > cap) {
    bytes = cap;
    rc = MPI_ERR_TRUNCATE;
  }
  int type_size = 0;
  PMPI_Type_size(dt, &type_size);
  int elements = type_size > 0 ? static_cast<int>(bytes / static_cast<size_t>(type_size)) : 0;
  int pos = 0;
  if (elements > 0)
    PMPI_Unpack(arena_at(off), static_cast<int>(bytes), &pos, buf, elements, dt, MPI_COMM_WORLD);
  return rc;
}

void status_from_proxy(const int64_t* r, MPI_Status* status) {
  if (status == MPI_STATUS_IGNORE) return;
  status->MPI_SOURCE = static_cast<int>(r[0]);
  status->MPI_TAG = static_cast<int>(r[1]);
  status->MPI_ERROR = static_cast<int>(r[3]);
  PMPI_Status_set_elements_x(status, MPI_BYTE, static_cast<MPI_Count>(r[2]));
  PMPI_Status_set_cancelled(status, static_cast<int>(r[4]));
}

bool be_is_proxy_request(MPI_Request r) {
  return proxied() && r != MPI_REQUEST_NULL &&
         reinterpret_cast<ProxyRequest*>(r)->magic == ProxyRequest::kMagic;
}

int be_send(const void* buf, int count, MPI_Datatype dt, int dest, int tag, CommInfo* c,
            SendMode mode) {
  if (!proxied()) {
    switch (mode) {
      case kSync:
        return PMPI_Ssend(buf, count, dt, dest, tag, c->handle);
      case kReady:
        return PMPI_Rsend(buf, count, dt, dest, tag, c->handle);
      case kBuffered:
        return PMPI_Bsend(buf, count, dt, dest, tag, c->handle);
      default:
        return PMPI_Send(buf, count, dt, dest, tag, c->handle);
    }
  }
  if (dest == MPI_PROC_NULL) return MPI_SUCCESS;
  progress_background();
  ProxyRequest* p;
  int rc = proxy_isend(buf, count, dt, dest, tag, c, mode, &p);
  if (rc != MPI_SUCCESS) return rc;
  if (mode == kBuffered) {
    std::lock_guard<std::mutex> lk(g_bg_mu);
    g_background.push_back(p);
    return MPI_SUCCESS;
  }
  // Like the library's blocking send: no safe point inside (a parked receiver drains).
  for (;;) {
    int flag = 0;
    rc = proxy_test(p, &flag, MPI_STATUS_IGNORE, kProxyWaitUs);
    if (flag || rc != MPI_SUCCESS) return rc;
  }
}

int be_isend(const void* buf, int count, MPI_Datatype dt, int dest, int tag, CommInfo* c,
             SendMode mode, MPI_Request* out) {
  if (!proxied()) {
    switch (mode) {
      case kSync:
        return PMPI_Issend(buf, count, dt, dest, tag, c->handle, out);
      case kReady:
        return PMPI_Irsend(buf, count, dt, dest, tag, c->handle, out);
      case kBuffered:
        return PMPI_Ibsend(buf, count, dt, dest, tag, c->handle, out);
      default:
        return PMPI_Isend(buf, count, dt, dest, tag, c->handle, out);
    }
  }
  progress_background();
  ProxyRequest* p;
  int rc =
      proxy_isend(buf, count, dt, dest == MPI_PROC_NULL ? MPI_PROC_NULL : dest, tag, c, mode, &p);
  *out = reinterpret_cast<MPI_Request>(p);
  return rc;
}

int be_irecv(void* buf, int count, MPI_Datatype dt, int source, int tag, CommInfo* c,
             MPI_Request* out) {
  if (!proxied()) return PMPI_Irecv(buf, count, dt, source, tag, c->handle, out);
  auto* p = new ProxyRequest;
  p->recv = true;
  p->buf = buf;
  p->count = count;
  p->dt = dt;
  p->cap = pack_size(count, dt);
  p->off = need_arena(p->cap);
  ProxyResult res =
      proxy_call(Op::kIrecv, {p->off, static_cast<int64_t>(p->cap), source, tag, c->proxy_id});
  p->id = res.r[0];
  *out = reinterpret_cast<MPI_Request>(p);
  return res.rc;
}

int be_test(MPI_Request* r, int* flag, MPI_Status* status, bool waiting) {
  if (!proxied() || !be_is_proxy_request(*r)) {
    if (proxied()) {  // a request of the old library (persistent, never started again)
      *flag = 1;
      *r = MPI_REQUEST_NULL;
      empty_status(status);
      return MPI_SUCCESS;
    }
    return PMPI_Test(r, flag, status);
  }
  progress_background();
  int rc = proxy_test(as_proxy(*r), flag, status, waiting ? kProxyWaitUs : 0);
  if (*flag) *r = MPI_REQUEST_NULL;
  return rc;
}

int be_iprobe(int source, int tag, CommInfo* c, int* flag, MPI_Status* status) {
  if (!proxied()) return PMPI_Iprobe(source, tag, c->handle, flag, status);
  progress_background();
  ProxyResult res = proxy_call(Op::kIprobe, {source, tag, c->proxy_id});
  *flag = static_cast<int>(res.r[0]);
  if (*flag) {
    int64_t r[5] = {res.r[1], res.r[2], res.r[3], 0, 0};
    status_from_proxy(r, status);
  }
  return res.rc;
}

int be_improbe(int source, int tag, CommInfo* c, int* flag, MPI_Message* m, MPI_Status* status) {
  if (!proxied()) return PMPI_Improbe(source, tag, c->handle, flag, m, status);
  ProxyResult res = proxy_call(Op::kImprobe, {source, tag, c->proxy_id});
  *flag = static_cast<int>(res.r[0]);
  if (*flag) {
    int64_t r[5] = {res.r[1], res.r[2], res.r[3], 0, 0};
    status_from_proxy(r, status);
    *m = reinterpret_cast<MPI_Message>(static_cast<intptr_t>(res.r[4]));
  }
  return res.rc;
}

int be_mrecv(void* buf, int count, MPI_Datatype dt, MPI_Message* m, MPI_Status* status) {
  if (!proxied()) return PMPI_Mrecv(buf, count, dt, m, status);
  size_t cap = pack_size(count, dt);
  int64_t off = need_arena(cap);
  ProxyResult res = proxy_call(Op::kMrecv, {static_cast<int64_t>(reinterpret_cast<intptr_t>(*m)),
                                            off, static_cast<int64_t>(cap)});
  int64_t r[5] = {res.r[1], res.r[2], res.r[3], res.r[4], res.r[5]};
  int rc = res.rc;
  if (rc == MPI_SUCCESS) rc = unpack_from_arena(off, static_cast<size_t>(r[2]), buf, count, dt);
  status_from_proxy(r, status);
  arena_free(off);
  *m = MPI_MESSAGE_NULL;
  return rc;
}

int be_recv_probed(char* data, int bytes, int source, int tag, CommInfo* c) {
  if (!proxied())
    return PMPI_Recv(data, bytes, MPI_BYTE, source, tag, c->handle, MPI_STATUS_IGNORE);
  int64_t off = need_arena(static_cast<size_t>(bytes));
  ProxyResult res = proxy_call(Op::kRecv, {off, bytes, source, tag, c->proxy_id});
  if (bytes > 0) memcpy(data, arena_at(off), static_cast<size_t>(bytes));
  arena_free(off);
  return res.rc;
}

int be_cancel(MPI_Request* r) {
  if (!proxied()) return PMPI_Cancel(r);
  if (!be_is_proxy_request(*r)) return MPI_SUCCESS;
  return proxy_call(Op::kCancel, {as_proxy(*r)->id}).rc;
}

int be_request_free(MPI_Request* r) {
  if (!proxied()) return PMPI_Request_free(r);
  if (be_is_proxy_request(*r)) {
    ProxyRequest* p = as_proxy(*r);
    if (p->recv) {
      proxy_call(Op::kRequestFree, {p->id});
      arena_free(p->off);  // the proxy no longer receives into it
      p->magic = 0;
      delete p;
    } else {
      // A send goes on in the proxy: keep testing it in the background.
      std::lock_guard<std::mutex> lk(g_bg_mu);
      g_background.push_back(p);
    }
  }
  *r = MPI_REQUEST_NULL;
  return MPI_SUCCESS;
}

}  // namespace ocr::crcp
