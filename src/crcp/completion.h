// Completing virtual requests: the shared steps of every Wait/Test variant, the blocking
// calls (which run as a nonblocking call plus a test loop with safe points, DESIGN.md §5)
// and the drain.
#pragma once

#include <mpi.h>

#include "crcp/vrequest.h"

namespace ocr::crcp {

// MPI_Test_cancelled without a call (Open MPI keeps the flag in the public status).
inline bool status_cancelled(const MPI_Status& st) {
#ifdef OPEN_MPI
  return st._cancelled != 0;
#else
  int c = 0;
  PMPI_Test_cancelled(&st, &c);
  return c != 0;
#endif
}

// Records a completion the library reported (counts a received message once).
void vreq_completed(VRequest* r, const MPI_Status& status);
// True when the request's operation is complete (asks the library if needed).
bool vreq_test(VRequest* r, bool waiting = false);
// Hands a completed request back to the application: copies the status, frees a
// non-persistent request (and sets *handle to MPI_REQUEST_NULL), deactivates a persistent
// one. Returns the operation's error code.
int vreq_finish(VRequest* r, MPI_Request* handle, MPI_Status* status);
// Status of an empty request (MPI-3.1 §3.7.3).
void empty_status(MPI_Status* status);
// Waits (with safe points) until every request in rs[0..n) is complete. The requests
// need not be on the active list: they are put there while the thread is parked.
void wait_all_internal(VRequest** rs, int n);

}  // namespace ocr::crcp
