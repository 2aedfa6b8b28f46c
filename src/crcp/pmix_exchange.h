// One coordination round over PMIx (DESIGN.md §5): every rank's agent publishes a blob,
// all meet in a fence that collects the data, then each reads every rank's blob. The
// agents use it; application threads never do.
#pragma once

#include <pmix.h>

#include <string>
#include <vector>

namespace ocr::crcp {

// `key` must be unique per round (PMIx keeps every published key). all[r] = rank r's blob.
bool pmix_allgather(const pmix_proc_t& self, int nprocs, const std::string& key,
                    const std::string& mine, std::vector<std::string>* all, std::string* err);

}  // namespace ocr::crcp
