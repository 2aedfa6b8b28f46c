// A rank restored by ompi-restart switches to proxy mode (docs/proxy.md): see
// restored_rank.cpp.
#pragma once

#include <cstdint>
#include <string>

namespace ocr::crcp {

// On the agent thread of a restored rank, before its application threads run again:
// connects to the proxy, checks that it is the same rank of a job of the same size,
// rebuilds the communicators there and posts the receives that were pending at the
// checkpoint again. *mpirun_pid receives the new job's mpirun. False with a reason.
bool become_proxied(int64_t* mpirun_pid, std::string* err);

// Forgets what belonged to the direct-mode library (its PMIx reference, threads, fds).
void forget_direct_library();

// Drops this process's own PMIx reference (after MPI_Finalize): without it the PMIx server
// counts the rank as exiting improperly. Idempotent.
void release_pmix();

}  // namespace ocr::crcp
