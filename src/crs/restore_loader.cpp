// Loader of ompi-cr-restore (see restore_loader.h). Everything that can fail is checked
// here, before the first irreversible step; the blob then only executes the plan.
#include "crs/restore_loader.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory_resource>
#include <vector>

#include "crs/image_chain.h"
#include "crs/image_reader.h"
#include "crs/restore_check.h"
#include "crs/restore_plan.h"

extern "C" const char ocr_restorer_blob_start[];
extern "C" const char ocr_restorer_blob_end[];

namespace ocr {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kTaskTop = 0x7ffffffff000ull;
constexpr uint64_t kThreadStack = 64 * 1024;
constexpr uint64_t kMainStack = 256 * 1024;
constexpr uint64_t kStackGuardGap = 1ull << 20;  // the kernel keeps 1 MiB below a stack free

uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) & ~(a - 1);
}

std::string errno_str(int e) {
  return strerror(e);
}

// Puts fd at a number >= floor and closes the original.
int lift_fd(int fd, int floor) {
  int n = fcntl(fd, F_DUPFD_CLOEXEC, floor);
  int e = errno;
  close(fd);
  errno = e;
  return n;
}

pid_t g_restored_child = 0;

void forward_signal(int sig) {
  kill(g_restored_child, sig);
}

// The parent of a restore that kept the old PID: it stays as ompi-restart's process, so
// whoever started it still waits for the program's end and gets its exit status; the
// program dies with it (PDEATHSIG), and signals sent to it are passed on.
[[noreturn]] void wait_for_restored(pid_t child) {
  g_restored_child = child;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward_signal;
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH, SIGCONT})
    sigaction(sig, &sa, nullptr);
  // The terminal sends these to the whole foreground group, the program included.
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
  const int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
  signal(sig, SIG_DFL);
  raise(sig);
  _exit(128 + sig);
}

// Continues the restore in a child that has the checkpointed process's PID, when that
// PID is free and this process may choose PIDs (root, or CAP_CHECKPOINT_RESTORE). In the
// parent it never returns. Returns true in the child, false when the PID could not be
// kept (the restore then goes on in this process, with new ids).
bool continue_with_pid(pid_t want, bool verbose) {
  if (want <= 0 || want == getpid()) return want == getpid();
  fflush(stdout);
  fflush(stderr);
  const pid_t parent = getpid();
  pid_t tids[1] = {want};
  struct clone_args ca;
  memset(&ca, 0, sizeof ca);
  ca.exit_signal = SIGCHLD;
  ca.set_tid = reinterpret_cast<uint64_t>(tids);
  ca.set_tid_size = 1;
  long r = syscall(SYS_clone3, &ca, sizeof ca);
  if (r < 0) {
    if (verbose)
      fprintf(stderr,
              "ompi-cr-restore: note: cannot restore as PID %d (%s); new PID and thread ids\n",
              want, strerror(errno));
    return false;
  }
  if (r > 0) wait_for_restored(static_cast<pid_t>(r));
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(125);  // the waiter is already gone
  return true;
}

class PlanBuilder {
 public:
  template <typename T>
  uint64_t add_array(const std::vector<T>& v) {
    uint64_t off = align_up(bytes_.size(), 16);
    bytes_.resize(off + v.size() * sizeof(T));
    if (!v.empty()) memcpy(bytes_.data() + off, v.data(), v.size() * sizeof(T));
    return off;
  }
  std::vector<char>& bytes() { return bytes_; }

 private:
  std::vector<char> bytes_;
};

}  // namespace

bool restore_process(const std::string& image_path, const RestoreOptions& opt, std::string* error) {
  std::vector<Image> chain;
  ReadOptions ro;
  if (!read_image_chain(image_path, ro, &chain, error)) return false;
  const Image& img = chain[0];
  auto fail = [&](const std::string& msg) {
    *error = image_path + ": " + msg;
    return false;
  };

  // CPU, mapped files, working directory, vdso: refused here before anything changes.
  std::vector<ocr_plan_special> specials;
  std::string why;
  if (!check_restore_environment(img, &specials, &why)) return fail(why);
  const ocr_process_record& pr = img.process;

  // From here on the restore happens in a process with the old PID if possible.
  const bool keep_ids = continue_with_pid(img.header.pid, opt.verbose);

  // Files: descriptors the program had (0-2 are always ompi-restart's own), files to map.
  std::vector<ocr_plan_fd> fds;
  std::vector<int> to_close;
  int max_target = 2;
  for (const ImageFd& f : img.fds) max_target = std::max(max_target, f.rec.fd);
  const int floor = max_target + 1 < 64 ? 64 : max_target + 1;
  auto cleanup = [&]() {
    for (int fd : to_close) close(fd);
  };
  // Pipes the process had with itself: one new pipe each, refilled with what was buffered.
  std::vector<std::pair<uint64_t, std::array<int, 2>>> pipes;  // ino -> {read, write}
  for (const ImageFd& f : img.fds) {
    if (f.rec.kind != OCR_FD_PIPE) continue;
    auto it =
        std::find_if(pipes.begin(), pipes.end(), [&](auto& p) { return p.first == f.rec.ino; });
    if (it == pipes.end()) {
      int pf[2];
      if (pipe2(pf, O_CLOEXEC | O_NONBLOCK) != 0) {
        int e = errno;
        cleanup();
        return fail("cannot create a pipe for fd " + std::to_string(f.rec.fd) + ": " +
                    errno_str(e));
      }
      fcntl(pf[1], F_SETPIPE_SZ, static_cast<int>(f.rec.offset));  // best effort
      for (int& end : pf) {
        end = lift_fd(end, floor);
        if (end < 0) {
          cleanup();
          return fail("out of file descriptors");
        }
        to_close.push_back(end);
      }
      pipes.push_back({f.rec.ino, {pf[0], pf[1]}});
      it = pipes.end() - 1;
    }
    if (!f.pipe_bytes.empty()) {
      ssize_t n = write(it->second[1], f.pipe_bytes.data(), f.pipe_bytes.size());
      if (n != static_cast<ssize_t>(f.pipe_bytes.size())) {
        cleanup();
        return fail("cannot refill the pipe of fd " + std::to_string(f.rec.fd) + " with " +
                    std::to_string(f.pipe_bytes.size()) + " bytes");
      }
    }
  }
  for (auto& p : pipes)  // status flags (O_NONBLOCK, ...) of each end as the program had them
    for (const ImageFd& f : img.fds)
      if (f.rec.kind == OCR_FD_PIPE && f.rec.ino == p.first) {
        const int end = (f.rec.flags & O_ACCMODE) == O_RDONLY ? p.second[0] : p.second[1];
        fcntl(end, F_SETFL,
              static_cast<int>(f.rec.flags) & (O_NONBLOCK | O_APPEND | O_ASYNC | O_DIRECT));
      }

  for (const ImageFd& f : img.fds) {
    if (f.rec.fd <= 2) continue;
    if (f.rec.kind == OCR_FD_PIPE) {
      auto it =
          std::find_if(pipes.begin(), pipes.end(), [&](auto& p) { return p.first == f.rec.ino; });
      const int end = (f.rec.flags & O_ACCMODE) == O_RDONLY ? it->second[0] : it->second[1];
      fds.push_back({end, f.rec.fd, -1, (f.rec.fd_flags & FD_CLOEXEC) ? 1u : 0u, 0});
      continue;
    }
    if (f.rec.kind == OCR_FD_UNSUPPORTED) {
      if (opt.verbose)
        fprintf(stderr, "ompi-cr-restore: fd %d (%s) is not a file and stays closed\n", f.rec.fd,
                f.path.c_str());
      continue;
    }
    int flags = static_cast<int>(f.rec.flags) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
    if (f.rec.kind == OCR_FD_DIRECTORY) flags = O_RDONLY | O_DIRECTORY;
    // A file under /proc/<its own pid>/ means the same file of the restored process.
    std::string path = f.path;
    const std::string own = "/proc/" + std::to_string(img.header.pid) + "/";
    if (!keep_ids && path.compare(0, own.size(), own) == 0)
      path = "/proc/self/" + path.substr(own.size());
    int fd = open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      cleanup();
      return fail("cannot reopen " + f.path + " for fd " + std::to_string(f.rec.fd) + ": " +
                  errno_str(e));
    }
    if (f.rec.kind == OCR_FD_REGULAR) {
      struct stat st;
      if (fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_ino) != f.rec.ino) {
        if (opt.verbose)
          fprintf(stderr,
                  "ompi-cr-restore: note: %s (fd %d) is a different file than at the checkpoint\n",
                  f.path.c_str(), f.rec.fd);
      }
    }
    fd = lift_fd(fd, floor);
    if (fd < 0) {
      cleanup();
      return fail("out of file descriptors");
    }
    to_close.push_back(fd);
    fds.push_back({fd, f.rec.fd, f.rec.kind == OCR_FD_CHARDEV ? -1 : f.rec.offset,
                   (f.rec.fd_flags & FD_CLOEXEC) ? 1u : 0u, 0});
  }
  // Which files are mapped shared and writable (those are opened read-write).
  std::vector<int> file_fd(img.files.size(), -1);
  for (const ImageRegion& r : img.regions) {
    if (r.rec.kind != OCR_REGION_FILE_PRIVATE && r.rec.kind != OCR_REGION_FILE_SHARED) continue;
    const ImageFile* f = img.find_file(r.rec.file_id);
    size_t idx = static_cast<size_t>(f - img.files.data());
    bool rw = r.rec.kind == OCR_REGION_FILE_SHARED && (r.rec.prot & PROT_WRITE);
    if (file_fd[idx] >= 0 && !rw) continue;
    int fd = open(f->path.c_str(), (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      cleanup();
      return fail("cannot open mapped file " + f->path + ": " + errno_str(e));
    }
    fd = lift_fd(fd, floor);
    if (fd < 0) {
      cleanup();
      return fail("out of file descriptors");
    }
    to_close.push_back(fd);
    file_fd[idx] = fd;
  }
  std::vector<int> image_fds;  // one per image of the chain, newest first
  for (const Image& link : chain) {
    int fd = open(link.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) fd = lift_fd(fd, floor);
    if (fd < 0) {
      int e = errno;
      cleanup();
      return fail(link.path + ": " + errno_str(e));
    }
    to_close.push_back(fd);
    image_fds.push_back(fd);
  }
  int exe_fd = img.exe.empty() ? -1 : open(img.exe.c_str(), O_RDONLY | O_CLOEXEC);
  if (exe_fd >= 0) {
    exe_fd = lift_fd(exe_fd, floor);
    if (exe_fd >= 0) to_close.push_back(exe_fd);
  }

  // The plan.
  std::vector<ocr_plan_region> regions;
  std::vector<ocr_plan_run> runs;
  std::vector<std::pair<uint64_t, uint64_t>> used;  // saved layout, for finding the hole
  for (const ImageRegion& r : img.regions) {
    uint64_t lo = r.rec.start;
    if (r.rec.flags & OCR_REGION_GROWSDOWN) lo = lo > kStackGuardGap ? lo - kStackGuardGap : 0;
    used.push_back({lo, r.rec.end});
    if (r.rec.kind == OCR_REGION_SKIPPED) continue;
    ocr_plan_region pr2{};
    pr2.start = r.rec.start;
    pr2.end = r.rec.end;
    pr2.file_offset = r.rec.file_offset;
    pr2.prot = r.rec.prot;
    pr2.first_run = runs.size();
    pr2.fd = -1;
    switch (r.rec.kind) {
      case OCR_REGION_ANON_PRIVATE:
        pr2.mmap_flags = MAP_PRIVATE | MAP_ANONYMOUS;
        pr2.file_offset = 0;
        if (r.rec.flags & OCR_REGION_GROWSDOWN) pr2.mmap_flags |= MAP_GROWSDOWN;
        break;
      case OCR_REGION_ANON_SHARED:
        pr2.mmap_flags = MAP_SHARED | MAP_ANONYMOUS;
        pr2.file_offset = 0;
        break;
      case OCR_REGION_FILE_PRIVATE:
      case OCR_REGION_FILE_SHARED: {
        const ImageFile* f = img.find_file(r.rec.file_id);
        pr2.fd = file_fd[static_cast<size_t>(f - img.files.data())];
        pr2.mmap_flags = r.rec.kind == OCR_REGION_FILE_SHARED ? MAP_SHARED : MAP_PRIVATE;
        break;
      }
    }
    std::vector<ResolvedRun> pieces;
    resolve_region_runs(chain, r, &pieces);
    for (const ResolvedRun& piece : pieces)
      runs.push_back({piece.addr, piece.len, piece.offset, image_fds[piece.image], 0});
    pr2.nruns = static_cast<uint32_t>(runs.size() - pr2.first_run);
    regions.push_back(pr2);
  }
  if (pr.vdso_start)
    used.push_back({pr.vvar_start ? pr.vvar_start : pr.vdso_start, pr.vdso_group_end});

  std::vector<ocr_plan_thread> threads;
  uint32_t main_index = 0;
  for (const ocr_thread_record& t : img.threads) {
    if (t.flags & OCR_THREAD_MAIN) main_index = static_cast<uint32_t>(threads.size());
    threads.push_back({t, 0, 0});
  }

  const uint64_t blob_size = static_cast<uint64_t>(ocr_restorer_blob_end - ocr_restorer_blob_start);
  PlanBuilder pb;
  pb.bytes().resize(sizeof(ocr_plan));
  ocr_plan plan{};
  plan.specials_off = pb.add_array(specials);
  plan.regions_off = pb.add_array(regions);
  plan.runs_off = pb.add_array(runs);
  plan.fds_off = pb.add_array(fds);
  plan.threads_off = pb.add_array(threads);
  plan.close_off = pb.add_array(to_close);
  const uint64_t plan_size = align_up(pb.bytes().size(), kPage);
  uint64_t special_span = 0;
  for (const ocr_plan_special& s : specials)
    special_span = std::max(special_span, s.cur_end - specials[0].cur_start);
  const uint64_t blob_area = align_up(blob_size, kPage);
  const uint64_t stacks = kMainStack + kThreadStack * threads.size();
  const uint64_t hole_size = blob_area + plan_size + stacks + align_up(special_span, kPage);

  // The hole: free in the saved layout and in this process now.
  std::sort(used.begin(), used.end());
  std::vector<std::pair<uint64_t, uint64_t>> gaps;
  uint64_t prev = 1ull << 20;
  for (auto& u : used) {
    if (u.first > prev) gaps.push_back({prev, u.first});
    prev = std::max(prev, u.second);
  }
  if (prev < kTaskTop) gaps.push_back({prev, kTaskTop});
  const uint64_t guard = 1ull << 20;
  void* hole = MAP_FAILED;
  for (auto it = gaps.rbegin(); it != gaps.rend() && hole == MAP_FAILED; ++it) {
    if (it->second - it->first < hole_size + 2 * guard) continue;
    uint64_t cand = (it->second - guard - hole_size) & ~(kPage - 1);
    for (int tries = 0; tries < 64 && cand >= it->first + guard; tries++) {
      void* p = mmap(reinterpret_cast<void*>(cand), hole_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (p != MAP_FAILED) {
        if (p == reinterpret_cast<void*>(cand)) {
          hole = p;
          break;
        }
        munmap(p, hole_size);  // an old kernel ignoring NOREPLACE
      }
      cand -= std::max<uint64_t>(align_up(hole_size, 1ull << 20), 16ull << 20);
    }
  }
  if (hole == MAP_FAILED) {
    cleanup();
    return fail("no free address range for the restorer");
  }
  const uint64_t hole_start = reinterpret_cast<uint64_t>(hole);
  const uint64_t plan_addr = hole_start + blob_area;
  const uint64_t stacks_base = plan_addr + plan_size;

  // Stacks grow down from the top of their slot.
  auto* tarr = reinterpret_cast<ocr_plan_thread*>(pb.bytes().data() + plan.threads_off);
  uint64_t s = stacks_base + kMainStack;
  for (size_t i = 0; i < threads.size(); i++) {
    if (i == main_index) {
      tarr[i].blob_stack_top = stacks_base + kMainStack - 64;
    } else {
      s += kThreadStack;
      tarr[i].blob_stack_top = s - 64;
    }
  }

  plan.magic = OCR_PLAN_MAGIC;
  plan.version = OCR_PLAN_VERSION;
  plan.verbose = opt.verbose;
  plan.plan_size = plan_size;
  plan.hole_start = hole_start;
  plan.hole_size = hole_size;
  plan.vdso_temp = stacks_base + stacks;
  plan.exe_fd = exe_fd;
  plan.nspecials = static_cast<uint32_t>(specials.size());
  plan.nregions = static_cast<uint32_t>(regions.size());
  plan.nfds = static_cast<uint32_t>(fds.size());
  plan.nthreads = static_cast<uint32_t>(threads.size());
  plan.nclose = static_cast<uint32_t>(to_close.size());
  plan.main_index = main_index;
  plan.nruns = runs.size();
  if (img.header.flags & OCR_HDR_HAVE_MM_MAP) {
    const ocr_mm_map& m = pr.mm;
    plan.have_mm_map = 1;
    plan.mm = {
        m.start_code, m.end_code, m.start_data, m.end_data, m.start_brk, m.brk,       m.start_stack,
        m.arg_start,  m.arg_end,  m.env_start,  m.env_end,  0,           m.auxv_size, 0};
    memcpy(plan.auxv, m.auxv, sizeof plan.auxv);
  }
  plan.restore_info_addr = pr.restore_info_addr;
  plan.generation = 1;
  plan.image_hash = img.header.header_hash;
  plan.chain_length = img.header.chain_length ? img.header.chain_length : 1;
  snprintf(plan.proxy_channel, sizeof plan.proxy_channel, "%s", opt.proxy_channel.c_str());
  {
    char* real = realpath(img.path.c_str(), nullptr);
    snprintf(plan.image_path, sizeof plan.image_path, "%s", real ? real : img.path.c_str());
    free(real);
  }
  plan.keep_tids = keep_ids;
  plan.tid_offset = pr.tid_offset;
  plan.rseq_offset = pr.rseq_offset;
  plan.rseq_size = pr.rseq_size;
  plan.rseq_sig = pr.rseq_sig;
  memcpy(pb.bytes().data(), &plan, sizeof plan);

  memcpy(hole, ocr_restorer_blob_start, blob_size);
  memcpy(reinterpret_cast<void*>(plan_addr), pb.bytes().data(), pb.bytes().size());
  if (mprotect(hole, blob_area, PROT_READ | PROT_EXEC) != 0) {
    int e = errno;
    munmap(hole, hole_size);
    cleanup();
    return fail("cannot make the restorer executable: " + errno_str(e));
  }
  if (opt.verbose)
    fprintf(
        stderr,
        "ompi-cr-restore: %zu regions, %zu page runs, %zu threads, %zu files; restorer at %#llx\n",
        regions.size(), runs.size(), threads.size(), img.files.size(),
        static_cast<unsigned long long>(hole_start));
  fflush(stdout);
  fflush(stderr);

  // Past this point nothing can be refused any more: process-wide kernel state first.
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  if (img.have_sigactions)
    for (int sig = 1; sig <= 64; sig++) {
      if (sig == SIGKILL || sig == SIGSTOP) continue;
      syscall(SYS_rt_sigaction, sig, &img.sigactions.act[sig - 1], nullptr, 8);
    }
  umask(pr.umask);
  personality(pr.personality);
  if (chdir(img.cwd.c_str()) != 0) { /* checked above; a race here leaves cwd as it is */
  }
  // The kernel would keep writing this thread's CPU number into glibc's rseq area of the
  // loader, which is about to be unmapped and replaced.
  if (__rseq_size)
    syscall(SYS_rseq, reinterpret_cast<char*>(__builtin_thread_pointer()) + __rseq_offset, 32,
            RSEQ_FLAG_UNREGISTER, 0x53053053);
  // Descriptors: 0-2 and the plan's stay, everything else of the loader goes.
  for (int fd = 3; fd < floor; fd++) close(fd);
  const uint64_t stack_top = tarr[main_index].blob_stack_top & ~15ull;
  __asm__ volatile(
      "mov %0, %%rsp\n\t"
      "xor %%ebp, %%ebp\n\t"
      "call *%1\n\t"
      "ud2\n\t"
      :
      : "r"(stack_top), "r"(hole_start), "D"(plan_addr)
      : "memory");
  __builtin_unreachable();
}

}  // namespace ocr
