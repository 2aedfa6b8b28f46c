// Virtual requests and messages: what the application holds as MPI_Request / MPI_Message.
// They live in application memory (so they are in every image) and carry what the
// protocol needs: whether the operation was counted, its completion status once the
// protocol completed it on the application's behalf (drain), and the arguments of
// receives, so that a restored rank can post them again (DESIGN.md §5, "Requests").
#pragma once

#include <mpi.h>

#include <cstdint>

namespace ocr::crcp {

struct CommInfo;
struct DrainedMessage;

enum class ReqKind : uint8_t { kSend, kRecv, kCollective };

struct VRequest {
  static constexpr uint32_t kMagic = 0x4f435251;  // "OCRQ"
  uint32_t magic = kMagic;
  ReqKind kind = ReqKind::kSend;
  bool persistent = false;
  bool active = false;   // started and not yet returned complete to the application
  bool done = false;     // completed; `status` holds the outcome
  bool counted = false;  // a receive already counted (drained, or matched by Mprobe)
  MPI_Request real = MPI_REQUEST_NULL;
  MPI_Status status{};
  CommInfo* comm = nullptr;
  // Arguments (receives: to match drained messages and to post again; persistent sends:
  // to count each start).
  void* buf = nullptr;
  int count = 0;
  MPI_Datatype datatype = MPI_DATATYPE_NULL;
  int peer = MPI_ANY_SOURCE;  // comm rank (destination or source)
  int tag = MPI_ANY_TAG;
  uint8_t send_mode = 0;     // persistent sends: enum SendMode of backend.h
  VRequest* prev = nullptr;  // list of active requests (the checkpoint drains them)
  VRequest* next = nullptr;
};

struct VMessage {
  static constexpr uint32_t kMagic = 0x4f434d53;  // "OCMS"
  uint32_t magic = kMagic;
  MPI_Message real = MPI_MESSAGE_NULL;  // matched in the library, not received yet
  DrainedMessage* drained = nullptr;    // or taken over by the protocol
  MPI_Status status{};
  CommInfo* comm = nullptr;
  VMessage* prev = nullptr;
  VMessage* next = nullptr;
};

VRequest* vreq_new(ReqKind kind, CommInfo* comm);
void vreq_delete(VRequest* r);
// The virtual request behind an application handle; aborts the job on a handle that is
// not one of ours (a request from an unwrapped call). MPI_REQUEST_NULL -> nullptr.
VRequest* vreq_of(MPI_Request r, const char* call);
inline MPI_Request handle_of(VRequest* r) {
  return reinterpret_cast<MPI_Request>(r);
}

// Active list: every request with an operation in the library or a completion the
// application has not collected. Guarded by a lock only under MPI_THREAD_MULTIPLE.
void active_add(VRequest* r);
void active_remove(VRequest* r);
VRequest* active_first();

VMessage* vmsg_new(CommInfo* comm);
void vmsg_delete(VMessage* m);
VMessage* vmsg_of(MPI_Message m, const char* call);
VMessage* vmsg_first();

void set_thread_multiple(bool on);
// Held while the protocol walks the lists (also by the list functions under MULTIPLE).
void lists_lock();
void lists_unlock();

}  // namespace ocr::crcp
