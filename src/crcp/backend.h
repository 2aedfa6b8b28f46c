// Where the core's point-to-point operations go: the library in this process through PMPI
// (direct mode, the first run) or the proxy through the channel (proxy mode, a restored
// rank; docs/proxy.md). The branch is one predicted load in direct mode.
//
// In proxy mode a request handle (MPI_Request) is a ProxyRequest of this process, a
// message handle the proxy's id of a matched message; payloads travel as packed bytes
// (packed and unpacked here by the old library's datatype engine, which needs no kernel
// state and so still works in the restored process).
#pragma once

#include <mpi.h>

#include <cstddef>

#include "crcp/comm_table.h"

extern "C" int ocr_crcp_proxied;

namespace ocr::crcp {

enum SendMode { kStandard = 0, kSync = 1, kReady = 2, kBuffered = 3 };

inline bool proxied() {
  return __builtin_expect(ocr_crcp_proxied != 0, 0);
}

int be_send(const void* buf, int count, MPI_Datatype dt, int dest, int tag, CommInfo* c,
            SendMode mode);
int be_isend(const void* buf, int count, MPI_Datatype dt, int dest, int tag, CommInfo* c,
             SendMode mode, MPI_Request* out);
int be_irecv(void* buf, int count, MPI_Datatype dt, int source, int tag, CommInfo* c,
             MPI_Request* out);
// Completes *r (sets it to MPI_REQUEST_NULL) or leaves it; persistent requests of direct
// mode stay allocated as the library leaves them.
// waiting: the caller waits for this request alone (a blocking call), so proxy mode may
// let the proxy wait a little for it instead of answering at once.
int be_test(MPI_Request* r, int* flag, MPI_Status* status, bool waiting = false);
int be_iprobe(int source, int tag, CommInfo* c, int* flag, MPI_Status* status);
int be_improbe(int source, int tag, CommInfo* c, int* flag, MPI_Message* m, MPI_Status* status);
int be_mrecv(void* buf, int count, MPI_Datatype dt, MPI_Message* m, MPI_Status* status);
// The drain's receive of a message it has just probed (`bytes` long) into malloc'd memory.
int be_recv_probed(char* data, int bytes, int source, int tag, CommInfo* c);
int be_cancel(MPI_Request* r);
int be_request_free(MPI_Request* r);
bool be_is_proxy_request(MPI_Request r);

// Packing helpers of proxy mode (also used by the proxied collectives).
size_t pack_size(int count, MPI_Datatype dt);
// Packs into the arena; returns the offset (and *bytes), or -1 when the arena is full.
int64_t pack_to_arena(const void* buf, int count, MPI_Datatype dt, size_t* bytes);
// Unpacks up to `bytes` from the arena; returns MPI_ERR_TRUNCATE if they do not fit.
int unpack_from_arena(int64_t off, size_t bytes, void* buf, int count, MPI_Datatype dt);
// Fills a status from the proxy's (source, tag, bytes, error, cancelled) results.
void status_from_proxy(const int64_t* r, MPI_Status* status);

}  // namespace ocr::crcp
