// Replay log storage: records framed as {uint32 fn, uint32 length, bytes}, appended to one
// growing buffer (see replay_log.h).
#include "crcp/replay_log.h"

#include <cstring>
#include <mutex>
#include <vector>

namespace ocr::crcp {
namespace {
std::mutex g_mu;
std::vector<unsigned char> g_log;
uint64_t g_records = 0;
}  // namespace

void replay_log_append(int fn, const void* record, size_t len) {
  const uint32_t head[2] = {static_cast<uint32_t>(fn), static_cast<uint32_t>(len)};
  std::lock_guard<std::mutex> lk(g_mu);
  const size_t at = g_log.size();
  g_log.resize(at + sizeof head + len);
  memcpy(g_log.data() + at, head, sizeof head);
  if (len) memcpy(g_log.data() + at + sizeof head, record, len);
  g_records++;
}

ReplayLogView replay_log_view() {
  std::lock_guard<std::mutex> lk(g_mu);
  return {g_log.data(), g_log.size(), g_records};
}

}  // namespace ocr::crcp
