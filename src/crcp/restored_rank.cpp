// Switch of a restored rank to proxy mode (see restored_rank.h).
#include "crcp/restored_rank.h"

#include <cstring>

#include "crcp/backend.h"
#include "crcp/crcp_abort.h"
#include "crcp/protocol_state.h"
#include "crcp/proxy_client.h"
#include "crcp/proxy_comms.h"
#include "crcp/vrequest.h"
#include "crs/image_format.h"

extern "C" ocr_restore_info ompi_cr_restore_info;

namespace ocr::crcp {

bool become_proxied(int64_t* mpirun_pid, std::string* err) {
  if (!proxy_connect(ompi_cr_restore_info.proxy_channel, err)) return false;
  const proxy::Header* hdr = proxy_header();
  if (hdr->size != g_proto.world_size || hdr->rank != g_proto.world_rank) {
    *err = "the restarted job has " + std::to_string(hdr->size) + " ranks and this is rank " +
           std::to_string(hdr->rank) + ", but the image is rank " +
           std::to_string(g_proto.world_rank) + " of " + std::to_string(g_proto.world_size);
    return false;
  }
  forget_direct_library();
  ocr_crcp_proxied = 1;
  if (!rebuild_communicators(err)) return false;
  // Receives that were posted at the checkpoint (their buffers were left out of the
  // image: no message had arrived) are posted again in the proxy.
  int reposted = 0;
  for (VRequest* r = active_first(); r; r = r->next) {
    if (r->kind != ReqKind::kRecv || r->done || !r->active) continue;
    r->real = MPI_REQUEST_NULL;
    int rc = be_irecv(r->buf, r->count, r->datatype, r->peer, r->tag, r->comm, &r->real);
    if (rc != MPI_SUCCESS) {
      *err = "the proxy could not post a pending receive again";
      return false;
    }
    reposted++;
  }
  *mpirun_pid = hdr->mpirun_pid;
  vlog("proxy mode: %d receives posted again", reposted);
  return true;
}

}  // namespace ocr::crcp
