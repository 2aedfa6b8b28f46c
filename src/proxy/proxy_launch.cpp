// Channel creation and proxy start (see proxy_launch.h).
#include "proxy/proxy_launch.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "proxy/channel.h"

extern char** environ;

namespace ocr::proxy {

bool launch_proxy(const std::string& proxy_exe, std::string* channel, pid_t* pid,
                  std::string* err) {
  char path[128];
  channel_path(path, sizeof path, getpid());
  unlink(path);  // a leftover of an earlier process with this PID
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    *err = std::string("cannot create the proxy channel ") + path + ": " + strerror(errno);
    return false;
  }
  if (ftruncate(fd, static_cast<off_t>(kChannelSize)) != 0) {
    *err = std::string("cannot size the proxy channel ") + path + ": " + strerror(errno);
    close(fd);
    unlink(path);
    return false;
  }
  void* base = mmap(nullptr, kHeaderSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED) {
    *err = std::string("cannot map the proxy channel: ") + strerror(errno);
    unlink(path);
    return false;
  }
  auto* hdr = new (base) Header{};
  hdr->magic = kChannelMagic;
  munmap(base, kHeaderSize);

  // The proxy must run the plain MPI library: nothing of ompi-cr preloaded into it.
  std::string preload;
  if (const char* p = getenv("LD_PRELOAD")) preload = p;
  pid_t child = fork();
  if (child < 0) {
    *err = std::string("cannot fork the proxy: ") + strerror(errno);
    unlink(path);
    return false;
  }
  if (child == 0) {
    unsetenv("LD_PRELOAD");
    setenv("OMPI_CR_DISABLE", "1", 1);
    execl(proxy_exe.c_str(), proxy_exe.c_str(), path, static_cast<char*>(nullptr));
    fprintf(stderr, "ompi-cr-restore: cannot run %s: %s\n", proxy_exe.c_str(), strerror(errno));
    _exit(127);
  }
  *channel = path;
  *pid = child;
  return true;
}

}  // namespace ocr::proxy
