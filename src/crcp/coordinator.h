// The agent's side of a coordinated checkpoint (docs/protocol.md): picks up the job
// request ompi-checkpoint left for this job, runs the coordination rounds with the other
// ranks' agents over PMIx, takes this rank's image at the cut, and (rank 0) commits the
// global snapshot.
#pragma once

#include <pmix.h>

namespace ocr::crcp {

// Called on the application thread at the end of MPI_Init: PMIx is usable (proc may be
// null if PMIx_Init failed). Wakes the agent so that a request that came before MPI_Init
// is answered.
void coordinator_mpi_ready(const pmix_proc_t* proc);

}  // namespace ocr::crcp
