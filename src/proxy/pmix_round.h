// One coordination round over PMIx: Put this process's blob, Commit, Fence with data
// collection, Get every rank's blob. The direct-mode agent (src/crcp/pmix_exchange.cpp)
// and the proxy on behalf of a restored agent (proxy_main.cpp) run exactly this.
#pragma once

#include <pmix.h>

#include <string>
#include <vector>

namespace ocr::proxy {

// all[r] = rank r's blob. `key` must be unique per round (PMIx keeps every key).
inline bool pmix_round(const char* nspace, int nprocs, const std::string& key, const void* data,
                       size_t len, std::vector<std::string>* all, std::string* err) {
  pmix_value_t value;
  PMIX_VALUE_CONSTRUCT(&value);
  value.type = PMIX_BYTE_OBJECT;
  value.data.bo.bytes = static_cast<char*>(const_cast<void*>(data));
  value.data.bo.size = len;
  pmix_status_t rc = PMIx_Put(PMIX_GLOBAL, key.c_str(), &value);  // PMIx copies the value
  if (rc != PMIX_SUCCESS) {
    *err = std::string("PMIx_Put failed: ") + PMIx_Error_string(rc);
    return false;
  }
  if ((rc = PMIx_Commit()) != PMIX_SUCCESS) {
    *err = std::string("PMIx_Commit failed: ") + PMIx_Error_string(rc);
    return false;
  }
  pmix_info_t info;
  bool collect = true;
  PMIX_INFO_CONSTRUCT(&info);
  PMIX_INFO_LOAD(&info, PMIX_COLLECT_DATA, &collect, PMIX_BOOL);
  rc = PMIx_Fence(nullptr, 0, &info, 1);
  PMIX_INFO_DESTRUCT(&info);
  if (rc != PMIX_SUCCESS) {
    *err = std::string("PMIx_Fence failed: ") + PMIx_Error_string(rc);
    return false;
  }
  all->assign(static_cast<size_t>(nprocs), std::string());
  for (int r = 0; r < nprocs; r++) {
    pmix_proc_t peer;
    PMIX_LOAD_PROCID(&peer, nspace, static_cast<pmix_rank_t>(r));
    pmix_value_t* got = nullptr;
    rc = PMIx_Get(&peer, key.c_str(), nullptr, 0, &got);
    if (rc != PMIX_SUCCESS || !got || got->type != PMIX_BYTE_OBJECT) {
      *err = "PMIx_Get of rank " + std::to_string(r) + "'s " + key +
             " failed: " + PMIx_Error_string(rc);
      if (got) PMIX_VALUE_RELEASE(got);
      return false;
    }
    (*all)[static_cast<size_t>(r)].assign(got->data.bo.bytes, got->data.bo.size);
    PMIX_VALUE_RELEASE(got);
  }
  return true;
}

}  // namespace ocr::proxy
