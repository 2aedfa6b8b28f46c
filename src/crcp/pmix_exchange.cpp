// PMIx_Put / Commit / Fence(collect) / Get round (see pmix_exchange.h).
#include "crcp/pmix_exchange.h"

#include <cstring>

#include "crcp/backend.h"
#include "crcp/proxy_client.h"
#include "proxy/pmix_round.h"

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
  return proxy::pmix_round(self.nspace, nprocs, key, mine.data(), mine.size(), all, err);
}

}  // namespace ocr::crcp
