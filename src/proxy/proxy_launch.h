// Starting a rank's proxy (ompi-cr-restore --job): creates the channel file and runs
// ompi-cr-proxy on it as a child, which calls MPI_Init and so becomes this rank of the new
// job (a child that calls MPI_Init in place of the process mpirun started joins the job as
// that rank, DESIGN.md §9).
#pragma once

#include <sys/types.h>

#include <string>

namespace ocr::proxy {

// `proxy_exe`: path of ompi-cr-proxy. On success *channel is the channel file; the
// restored runtime removes its name once it has mapped it (the proxy has it mapped by
// then), and the caller removes it if the restore fails before that.
bool launch_proxy(const std::string& proxy_exe, std::string* channel, pid_t* pid, std::string* err);

}  // namespace ocr::proxy
