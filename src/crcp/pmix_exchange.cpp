// PMIx_Put / Commit / Fence(collect) / Get round (see pmix_exchange.h).
#include "crcp/pmix_exchange.h"

#include <cstring>

#include "crcp/backend.h"
#include "crcp/proxy_client.h"

namespace ocr::crcp {

namespace {

// Proxy mode: the same round, run by the proxy (its PMIx client is the new job's).
bool proxied_allgather(int nprocs, const std::string& key, const std::string& mine,
                       std::vector<std::string>* all, std::string* err) {
  std::string data = key + mine;
  if (data.size() > proxy::kSlotDataSize) {
    *err = "coordination data too large for the proxy channel";
    return false;
  }
  ProxyResult res =
      proxy_call(proxy::Op::kPmixAllgather,
                 {static_cast<int64_t>(key.size()), static_cast<int64_t>(mine.size())}, data.data(),
                 data.size(), proxy::kAgentSlot);
  if (res.rc != 0) {
    *err =
        std::string("PMIx round in the proxy failed: ") + reinterpret_cast<const char*>(res.data);
    return false;
  }
  const auto* lens = reinterpret_cast<const uint64_t*>(res.data);
  const char* blobs = reinterpret_cast<const char*>(res.data) + 8 * static_cast<size_t>(nprocs);
  all->assign(static_cast<size_t>(nprocs), std::string());
  size_t at = 0;
  for (int r = 0; r < nprocs; r++) {
    (*all)[static_cast<size_t>(r)].assign(blobs + at, lens[r]);
    at += lens[r];
  }
  return true;
}

}  // namespace

bool pmix_allgather(const pmix_proc_t& self, int nprocs, const std::string& key,
                    const std::string& mine, std::vector<std::string>* all, std::string* err) {
  if (proxied()) return proxied_allgather(nprocs, key, mine, all, err);
  pmix_value_t value;
  PMIX_VALUE_CONSTRUCT(&value);
  value.type = PMIX_BYTE_OBJECT;
  value.data.bo.bytes = const_cast<char*>(mine.data());
  value.data.bo.size = mine.size();
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
    PMIX_LOAD_PROCID(&peer, self.nspace, static_cast<pmix_rank_t>(r));
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

}  // namespace ocr::crcp
