// The replay log: every call that created or freed an MPI object (communicator, group,
// datatype, op, keyval, ...), with its arguments serialized by parameter kind and the
// handle it produced, in call order, in application memory. A restored rank's proxy
// replays it to rebuild the objects and maps every old handle to the new one (issue 5);
// in direct mode it is only kept. Record layout: docs/wrappers.md.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ocr::crcp {

struct ReplayCreateGroup {  // the hand-written record of MPI_Comm_create_group
  uint64_t parent, group;
  int64_t tag;
  uint64_t newcomm;
};

void replay_log_append(int fn, const void* record, size_t len);

struct ReplayLogView {
  const unsigned char* data;
  size_t bytes;
  uint64_t records;
};
ReplayLogView replay_log_view();

}  // namespace ocr::crcp
