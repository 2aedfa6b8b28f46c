// Wait/Test machinery shared by the wrappers (see completion.h) and the MPI_Wait*/MPI_Test*
// entry points themselves.
#include "crcp/completion.h"

#include "crcp/backend.h"
#include "crcp/crcp_abort.h"
#include "crcp/crcp_custom.h"
#include "crcp/crcp_hooks.h"
#include "crcp/protocol_state.h"

namespace ocr::crcp {

void vreq_completed(VRequest* r, const MPI_Status& st) {
  r->done = true;
  r->status = st;
  const bool cancelled = status_cancelled(st);
  if (r->kind == ReqKind::kRecv && !r->counted && !cancelled && st.MPI_SOURCE >= 0)
    count_recv(r->comm, st.MPI_SOURCE);
  if (r->kind == ReqKind::kSend && cancelled) {
    int w = r->comm->world_of(r->peer);
    if (w >= 0) g_proto.counters.sent[w].fetch_sub(1, std::memory_order_relaxed);
  }
  r->counted = true;
}

bool vreq_test(VRequest* r, bool waiting) {
  if (r->done) return true;
  if (r->real == MPI_REQUEST_NULL) return !r->active;
  int flag = 0;
  MPI_Status st;
  be_test(&r->real, &flag, &st, waiting);
  if (flag) vreq_completed(r, st);
  return flag != 0;
}

void empty_status(MPI_Status* status) {
  if (status == MPI_STATUS_IGNORE) return;
  status->MPI_SOURCE = MPI_ANY_SOURCE;
  status->MPI_TAG = MPI_ANY_TAG;
  status->MPI_ERROR = MPI_SUCCESS;
  PMPI_Status_set_elements_x(status, MPI_BYTE, 0);
  PMPI_Status_set_cancelled(status, 0);
}

int vreq_finish(VRequest* r, MPI_Request* handle, MPI_Status* status) {
  if (!r->done) {  // an inactive persistent request
    empty_status(status);
    return MPI_SUCCESS;
  }
  if (status != MPI_STATUS_IGNORE) *status = r->status;
  int rc = r->status.MPI_ERROR;
  const bool listed = r->prev || r->next || active_first() == r;
  if (listed) active_remove(r);
  if (r->persistent) {
    r->active = false;
    r->done = false;
    r->counted = false;
  } else {
    vreq_delete(r);
    *handle = MPI_REQUEST_NULL;
  }
  // Open MPI leaves MPI_ERROR alone for single-request calls; report success unless the
  // operation itself failed (truncation of a drained message).
  return rc == MPI_ERR_TRUNCATE ? rc : MPI_SUCCESS;
}

void wait_all_internal(VRequest** rs, int n) {
  bool listed[8] = {};
  for (;;) {
    bool all = true;
    for (int i = 0; i < n; i++)
      if (!vreq_test(rs[i], n == 1)) all = false;
    if (all) break;
    if (checkpoint_pending()) {
      for (int i = 0; i < n && i < 8; i++)
        if (!listed[i]) {
          active_add(rs[i]);
          listed[i] = true;
        }
      park_here();
    }
  }
  for (int i = 0; i < n && i < 8; i++)
    if (listed[i]) active_remove(rs[i]);
}

}  // namespace ocr::crcp

using namespace ocr::crcp;

extern "C" {

int ocr_crcp_MPI_Wait(MPI_Request* request, MPI_Status* status) {
  ocr_crcp_safe_point();
  VRequest* r = vreq_of(*request, "MPI_Wait");
  if (!r || (r->persistent && !r->active)) {
    empty_status(status);
    return MPI_SUCCESS;
  }
  while (!vreq_test(r, true))
    if (checkpoint_pending()) park_here();
  return vreq_finish(r, request, status);
}

int ocr_crcp_MPI_Test(MPI_Request* request, int* flag, MPI_Status* status) {
  ocr_crcp_safe_point();
  VRequest* r = vreq_of(*request, "MPI_Test");
  if (!r || (r->persistent && !r->active)) {
    *flag = 1;
    empty_status(status);
    return MPI_SUCCESS;
  }
  *flag = vreq_test(r) ? 1 : 0;
  return *flag ? vreq_finish(r, request, status) : MPI_SUCCESS;
}

int ocr_crcp_MPI_Request_get_status(MPI_Request request, int* flag, MPI_Status* status) {
  ocr_crcp_safe_point();
  VRequest* r = vreq_of(request, "MPI_Request_get_status");
  if (!r || (r->persistent && !r->active)) {
    *flag = 1;
    empty_status(status);
    return MPI_SUCCESS;
  }
  *flag = vreq_test(r) ? 1 : 0;
  if (*flag && status != MPI_STATUS_IGNORE) *status = r->status;
  return MPI_SUCCESS;
}

int ocr_crcp_MPI_Waitall(int count, MPI_Request requests[], MPI_Status statuses[]) {
  ocr_crcp_safe_point();
  // Direct mode, no checkpoint: one MPI_Testall per iteration over the library requests
  // (what halo exchanges spend their time in) instead of one MPI_Test per request.
  constexpr int kFast = 32;
  if (!proxied() && count <= kFast) {
    MPI_Request reals[kFast];
    VRequest* vs[kFast];
    int k = 0;
    bool simple = true;
    for (int i = 0; i < count && simple; i++) {
      VRequest* r = vreq_of(requests[i], "MPI_Waitall");
      if (!r || (r->persistent && !r->active) || r->done) continue;
      if (r->real == MPI_REQUEST_NULL) simple = false;
      vs[k] = r;
      reals[k++] = r->real;
    }
    while (simple && k > 0) {
      int flag = 0;
      MPI_Status sts[kFast];
      PMPI_Testall(k, reals, &flag, sts);
      if (flag) {
        for (int j = 0; j < k; j++) {
          vs[j]->real = reals[j];  // MPI_REQUEST_NULL, or an inactive persistent request
          vreq_completed(vs[j], sts[j]);
        }
        break;
      }
      if (checkpoint_pending()) break;  // the general loop below parks
    }
  }
  for (;;) {
    bool all = true;
    for (int i = 0; i < count; i++) {
      VRequest* r = vreq_of(requests[i], "MPI_Waitall");
      if (r && !(r->persistent && !r->active) && !vreq_test(r)) all = false;
    }
    if (all) break;
    if (checkpoint_pending()) park_here();
  }
  int rc = MPI_SUCCESS;
  for (int i = 0; i < count; i++) {
    MPI_Status* st = statuses == MPI_STATUSES_IGNORE ? MPI_STATUS_IGNORE : &statuses[i];
    VRequest* r = vreq_of(requests[i], "MPI_Waitall");
    int e = MPI_SUCCESS;
    if (!r)
      empty_status(st);
    else
      e = vreq_finish(r, &requests[i], st);
    if (e != MPI_SUCCESS) rc = MPI_ERR_IN_STATUS;
    if (st != MPI_STATUS_IGNORE) st->MPI_ERROR = e;
  }
  return rc;
}

int ocr_crcp_MPI_Testall(int count, MPI_Request requests[], int* flag, MPI_Status statuses[]) {
  ocr_crcp_safe_point();
  bool all = true;
  for (int i = 0; i < count; i++) {
    VRequest* r = vreq_of(requests[i], "MPI_Testall");
    if (r && !(r->persistent && !r->active) && !vreq_test(r)) all = false;
  }
  *flag = all ? 1 : 0;
  if (!all) return MPI_SUCCESS;
  int rc = MPI_SUCCESS;
  for (int i = 0; i < count; i++) {
    MPI_Status* st = statuses == MPI_STATUSES_IGNORE ? MPI_STATUS_IGNORE : &statuses[i];
    VRequest* r = vreq_of(requests[i], "MPI_Testall");
    int e = MPI_SUCCESS;
    if (!r)
      empty_status(st);
    else
      e = vreq_finish(r, &requests[i], st);
    if (e != MPI_SUCCESS) rc = MPI_ERR_IN_STATUS;
  }
  return rc;
}

// Shared by Waitany/Testany: one pass; *index = MPI_UNDEFINED when no request is active.
static bool any_pass(int count, MPI_Request requests[], int* index, MPI_Status* status,
                     bool* none_active, int* rc, const char* call) {
  *none_active = true;
  for (int i = 0; i < count; i++) {
    VRequest* r = vreq_of(requests[i], call);
    if (!r || (r->persistent && !r->active)) continue;
    *none_active = false;
    if (vreq_test(r)) {
      *index = i;
      *rc = vreq_finish(r, &requests[i], status);
      return true;
    }
  }
  return false;
}

int ocr_crcp_MPI_Waitany(int count, MPI_Request requests[], int* index, MPI_Status* status) {
  ocr_crcp_safe_point();
  for (;;) {
    bool none = false;
    int rc = MPI_SUCCESS;
    if (any_pass(count, requests, index, status, &none, &rc, "MPI_Waitany")) return rc;
    if (none) {
      *index = MPI_UNDEFINED;
      empty_status(status);
      return MPI_SUCCESS;
    }
    if (checkpoint_pending()) park_here();
  }
}

int ocr_crcp_MPI_Testany(int count, MPI_Request requests[], int* index, int* flag,
                         MPI_Status* status) {
  ocr_crcp_safe_point();
  bool none = false;
  int rc = MPI_SUCCESS;
  if (any_pass(count, requests, index, status, &none, &rc, "MPI_Testany")) {
    *flag = 1;
    return rc;
  }
  *index = MPI_UNDEFINED;
  *flag = none ? 1 : 0;
  if (none) empty_status(status);
  return MPI_SUCCESS;
}

static int some_pass(int incount, MPI_Request requests[], int* outcount, int indices[],
                     MPI_Status statuses[], const char* call) {
  bool any_active = false;
  int n = 0, rc = MPI_SUCCESS;
  for (int i = 0; i < incount; i++) {
    VRequest* r = vreq_of(requests[i], call);
    if (!r || (r->persistent && !r->active)) continue;
    any_active = true;
    if (!vreq_test(r)) continue;
    MPI_Status* st = statuses == MPI_STATUSES_IGNORE ? MPI_STATUS_IGNORE : &statuses[n];
    int e = vreq_finish(r, &requests[i], st);
    if (e != MPI_SUCCESS) rc = MPI_ERR_IN_STATUS;
    indices[n++] = i;
  }
  *outcount = any_active ? n : MPI_UNDEFINED;
  return rc;
}

int ocr_crcp_MPI_Waitsome(int incount, MPI_Request requests[], int* outcount, int indices[],
                          MPI_Status statuses[]) {
  ocr_crcp_safe_point();
  for (;;) {
    int rc = some_pass(incount, requests, outcount, indices, statuses, "MPI_Waitsome");
    if (*outcount != 0) return rc;
    if (checkpoint_pending()) park_here();
  }
}

int ocr_crcp_MPI_Testsome(int incount, MPI_Request requests[], int* outcount, int indices[],
                          MPI_Status statuses[]) {
  ocr_crcp_safe_point();
  return some_pass(incount, requests, outcount, indices, statuses, "MPI_Testsome");
}

int ocr_crcp_MPI_Request_free(MPI_Request* request) {
  ocr_crcp_safe_point();
  VRequest* r = vreq_of(*request, "MPI_Request_free");
  if (!r) return MPI_SUCCESS;
  if (r->active && !r->done && r->kind == ReqKind::kRecv)
    fatal(
        "MPI_Request_free: freeing an active receive request is not supported under "
        "checkpoint/restart (its message could not be counted)");
  const bool listed = r->prev || r->next || active_first() == r;
  if (listed) active_remove(r);
  // An active send continues in the library: it was counted when it was posted.
  int rc = r->real != MPI_REQUEST_NULL ? be_request_free(&r->real) : MPI_SUCCESS;
  vreq_delete(r);
  *request = MPI_REQUEST_NULL;
  return rc;
}

int ocr_crcp_MPI_Cancel(MPI_Request* request) {
  ocr_crcp_safe_point();
  VRequest* r = vreq_of(*request, "MPI_Cancel");
  if (!r || r->done || r->real == MPI_REQUEST_NULL) return MPI_SUCCESS;
  return be_cancel(&r->real);
}

}  // extern "C"
