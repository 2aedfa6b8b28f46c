// Allocation and bookkeeping of virtual requests and messages. A free list keeps the
// per-call cost of Isend/Irecv at a few nanoseconds; under MPI_THREAD_MULTIPLE a mutex
// guards it and the active list.
#include "crcp/vrequest.h"

#include <mutex>

#include "crcp/crcp_abort.h"

namespace ocr::crcp {
namespace {

std::mutex g_mu;
bool g_multiple = false;
VRequest* g_free = nullptr;
VRequest* g_active = nullptr;
VMessage* g_messages = nullptr;

struct MaybeLock {
  MaybeLock() {
    if (g_multiple) g_mu.lock();
  }
  ~MaybeLock() {
    if (g_multiple) g_mu.unlock();
  }
};

}  // namespace

void set_thread_multiple(bool on) {
  g_multiple = on;
}
void lists_lock() {
  if (g_multiple) g_mu.lock();
}
void lists_unlock() {
  if (g_multiple) g_mu.unlock();
}

VRequest* vreq_new(ReqKind kind, CommInfo* comm) {
  VRequest* r;
  {
    MaybeLock lk;
    r = g_free;
    if (r) g_free = r->next;
  }
  if (!r) r = new VRequest;
  *r = VRequest{};
  r->kind = kind;
  r->comm = comm;
  return r;
}

void vreq_delete(VRequest* r) {
  r->magic = 0;
  MaybeLock lk;
  r->next = g_free;
  g_free = r;
}

VRequest* vreq_of(MPI_Request h, const char* call) {
  if (h == MPI_REQUEST_NULL) return nullptr;
  auto* r = reinterpret_cast<VRequest*>(h);
  if (r->magic != VRequest::kMagic)
    fatal("%s: request %p was not created through a call ompi-cr wraps (or was freed)", call,
          static_cast<void*>(h));
  return r;
}

void active_add(VRequest* r) {
  MaybeLock lk;
  r->prev = nullptr;
  r->next = g_active;
  if (g_active) g_active->prev = r;
  g_active = r;
}

void active_remove(VRequest* r) {
  MaybeLock lk;
  if (r->prev)
    r->prev->next = r->next;
  else if (g_active == r)
    g_active = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = nullptr;
}

VRequest* active_first() {
  return g_active;
}

VMessage* vmsg_new(CommInfo* comm) {
  auto* m = new VMessage;
  m->comm = comm;
  MaybeLock lk;
  m->next = g_messages;
  if (g_messages) g_messages->prev = m;
  g_messages = m;
  return m;
}

void vmsg_delete(VMessage* m) {
  {
    MaybeLock lk;
    if (m->prev)
      m->prev->next = m->next;
    else if (g_messages == m)
      g_messages = m->next;
    if (m->next) m->next->prev = m->prev;
  }
  m->magic = 0;
  delete m;
}

VMessage* vmsg_of(MPI_Message h, const char* call) {
  auto* m = reinterpret_cast<VMessage*>(h);
  if (!m || m->magic != VMessage::kMagic)
    fatal("%s: message handle %p was not created through a call ompi-cr wraps", call,
          static_cast<void*>(h));
  return m;
}

VMessage* vmsg_first() {
  return g_messages;
}

}  // namespace ocr::crcp
