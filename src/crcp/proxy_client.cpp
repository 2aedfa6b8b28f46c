// Proxy channel, application side (see proxy_client.h).
#include "crcp/proxy_client.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>

namespace ocr::crcp {
namespace {

void* g_base = nullptr;
proxy::Header* g_hdr = nullptr;
std::mutex g_slot_mu[proxy::kSlots];
std::mutex g_arena_mu;
std::map<int64_t, int64_t> g_free;  // offset -> size, coalesced
std::map<int64_t, int64_t> g_used;  // offset -> size
constexpr int64_t kAlign = 64;

}  // namespace

bool proxy_connect(const char* path, std::string* err) {
  if (!path || !*path) {
    *err = "this rank was restored without a proxy (restart MPI jobs with ompi-restart)";
    return false;
  }
  int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  if (fd < 0) {
    *err = std::string("no proxy channel ") + path + ": " + strerror(errno) +
           " (restart MPI jobs with ompi-restart)";
    return false;
  }
  if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
    close(fd);
    *err = std::string(path) + " is not a private file of this user";
    return false;
  }
  void* base =
      mmap(nullptr, proxy::kChannelSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  close(fd);
  if (base == MAP_FAILED) {
    *err = std::string("cannot map ") + path + ": " + strerror(errno);
    return false;
  }
  auto* hdr = static_cast<proxy::Header*>(base);
  if (hdr->magic != proxy::kChannelMagic) {
    munmap(base, proxy::kChannelSize);
    *err = std::string(path) + " is not an ompi-cr proxy channel";
    return false;
  }
  for (;;) {
    uint32_t s = hdr->state.load();
    if (s == 1) break;
    if (s >= 2) {
      *err = std::string("the proxy failed: ") + hdr->error;
      return false;
    }
    proxy::futex_wait_shared(&hdr->state, s);
  }
  // Both sides have it mapped now: the name is not needed any more.
  unlink(path);
  g_base = base;
  g_hdr = hdr;
  g_free.clear();
  g_used.clear();
  g_free[0] = static_cast<int64_t>(proxy::kArenaSize);
  return true;
}

void proxy_area(uint64_t* start, uint64_t* end) {
  *start = reinterpret_cast<uint64_t>(g_base);
  *end = *start + proxy::kChannelSize;
}

const proxy::Header* proxy_header() {
  return g_hdr;
}

unsigned char* proxy_slot_data(int slot) {
  return proxy::slot_data(g_base, slot);
}

ProxyResult proxy_call(proxy::Op op, std::initializer_list<int64_t> args, const void* data,
                       size_t len, int slot) {
  std::lock_guard<std::mutex> lk(g_slot_mu[slot]);
  proxy::Slot& s = g_hdr->slots[slot];
  s.op = op;
  int i = 0;
  for (int64_t a : args) s.a[i++] = a;
  if (data && len) memcpy(proxy::slot_data(g_base, slot), data, len);
  uint32_t seen = s.resp.load(std::memory_order_acquire);
  proxy::bump_and_wake(&s.req, &s.server_sleeping);
  for (;;) {
    uint32_t v = proxy::wait_change(&s.resp, seen, &s.client_sleeping);
    if (v != seen) break;
  }
  if (g_hdr->state.load() == 2) return {-1, s.r, proxy::slot_data(g_base, slot)};
  return {s.rc, s.r, proxy::slot_data(g_base, slot)};
}

int64_t arena_alloc(size_t bytes) {
  const int64_t need = static_cast<int64_t>((bytes + kAlign - 1) / kAlign * kAlign) + kAlign;
  std::lock_guard<std::mutex> lk(g_arena_mu);
  for (auto it = g_free.begin(); it != g_free.end(); ++it) {
    if (it->second < need) continue;
    int64_t off = it->first, size = it->second;
    g_free.erase(it);
    if (size > need) g_free[off + need] = size - need;
    g_used[off] = need;
    return off;
  }
  return -1;
}

void arena_free(int64_t off) {
  std::lock_guard<std::mutex> lk(g_arena_mu);
  auto u = g_used.find(off);
  if (u == g_used.end()) return;
  int64_t size = u->second;
  g_used.erase(u);
  auto next = g_free.lower_bound(off);
  if (next != g_free.end() && off + size == next->first) {
    size += next->second;
    next = g_free.erase(next);
  }
  if (next != g_free.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == off) {
      prev->second += size;
      return;
    }
  }
  g_free[off] = size;
}

unsigned char* arena_at(int64_t off) {
  return proxy::arena(g_base) + off;
}

}  // namespace ocr::crcp
