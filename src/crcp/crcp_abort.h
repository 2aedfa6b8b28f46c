// Fatal errors of the MPI layer: one line on stderr naming the call and the reason, then
// the job is aborted (never a silent fallback that would bypass the protocol).
#pragma once

namespace ocr::crcp {

[[noreturn]] void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Verbose log (OMPI_CR_VERBOSE set), prefixed with the world rank.
void vlog(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace ocr::crcp
