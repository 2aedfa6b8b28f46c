// Communicators of a restored rank (proxy mode): see proxy_comms.cpp.
#pragma once

#include <string>

namespace ocr::crcp {

// Recreates every communicator this rank holds in its proxy (same members, same rank
// order, Cartesian topologies included). Runs on the agent before the application
// resumes; collective with the other ranks doing the same.
bool rebuild_communicators(std::string* err);

}  // namespace ocr::crcp
