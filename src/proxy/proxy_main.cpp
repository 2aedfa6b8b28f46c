// ompi-cr-proxy CHANNEL: owns a real MPI library on behalf of a restored application
// process (DESIGN.md §3, proxy mode; docs/proxy.md). ompi-cr-restore starts it for rank r of
// the new job (mpirun launched ompi-cr-restore; a child that calls MPI_Init joins the job
// as that rank). It serves the calls the application sends through the shared-memory
// channel (channel.h): the application thread's MPI calls on slot 0, the agent's PMIx
// coordination rounds on slot 1. Payloads are packed bytes in the channel's arena, so the
// proxy moves MPI_BYTE only, except for reductions on predefined types and operations,
// which it runs with its own handles for them (predefined.h), exactly as the original job
// did.
#include <fcntl.h>
#include <mpi.h>
#include <pmix.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "proxy/channel.h"
#include "proxy/pmix_round.h"
#include "proxy/predefined.h"

namespace {

using namespace ocr::proxy;

Header* g_hdr = nullptr;
void* g_base = nullptr;
std::vector<MPI_Comm> g_comms;  // index = comm id (0 world, 1 self)
std::unordered_map<int64_t, MPI_Request> g_reqs;
std::unordered_map<int64_t, MPI_Message> g_msgs;
int64_t g_next_id = 1;
MPI_Group g_world_group;
pmix_proc_t g_pmix_proc;

[[noreturn]] void die(const char* what) {
  fprintf(stderr, "ompi-cr-proxy: %s\n", what);
  if (g_hdr) {
    snprintf(g_hdr->error, sizeof g_hdr->error, "%s", what);
    g_hdr->state.store(2);
  }
  _exit(1);
}

void* at(int64_t off) {
  return arena(g_base) + off;
}

MPI_Comm comm_of(int64_t id) {
  if (id < 0 || static_cast<size_t>(id) >= g_comms.size() ||
      g_comms[static_cast<size_t>(id)] == MPI_COMM_NULL)
    die("unknown communicator id from the application");
  return g_comms[static_cast<size_t>(id)];
}

void put_status(Slot& s, const MPI_Status& st, int first) {
  int bytes = 0;
  MPI_Get_count(&st, MPI_BYTE, &bytes);
  int cancelled = 0;
  MPI_Test_cancelled(&st, &cancelled);
  s.r[first] = st.MPI_SOURCE;
  s.r[first + 1] = st.MPI_TAG;
  s.r[first + 2] = bytes;
  s.r[first + 3] = st.MPI_ERROR;
  s.r[first + 4] = cancelled;
}

// A new communicator: its id, size, rank and world ranks (into the slot's data).
void new_comm(Slot& s, unsigned char* data, MPI_Comm c) {
  if (c == MPI_COMM_NULL) {
    s.r[0] = -1;
    return;
  }
  g_comms.push_back(c);
  s.r[0] = static_cast<int64_t>(g_comms.size() - 1);
  int size, rank;
  MPI_Comm_size(c, &size);
  MPI_Comm_rank(c, &rank);
  s.r[1] = size;
  s.r[2] = rank;
  MPI_Group g;
  MPI_Comm_group(c, &g);
  std::vector<int> ranks(static_cast<size_t>(size));
  for (int i = 0; i < size; i++) ranks[static_cast<size_t>(i)] = i;
  MPI_Group_translate_ranks(g, size, ranks.data(), g_world_group, reinterpret_cast<int*>(data));
  MPI_Group_free(&g);
}

MPI_Group group_of_ranks(const int* world_ranks, int n) {
  MPI_Group g;
  MPI_Group_incl(g_world_group, n, world_ranks, &g);
  return g;
}

void serve_app(Slot& s, unsigned char* data) {
  const int64_t* a = s.a;
  s.rc = MPI_SUCCESS;
  switch (s.op) {
    case Op::kIsend: {
      MPI_Request rq;
      int n = static_cast<int>(a[1]), dest = static_cast<int>(a[2]), tag = static_cast<int>(a[3]);
      MPI_Comm c = comm_of(a[4]);
      if (a[5] == 1)
        s.rc = MPI_Issend(at(a[0]), n, MPI_BYTE, dest, tag, c, &rq);
      else if (a[5] == 2)
        s.rc = MPI_Irsend(at(a[0]), n, MPI_BYTE, dest, tag, c, &rq);
      else
        s.rc = MPI_Isend(at(a[0]), n, MPI_BYTE, dest, tag, c, &rq);
      g_reqs[g_next_id] = rq;
      s.r[0] = g_next_id++;
      break;
    }
    case Op::kIrecv: {
      MPI_Request rq;
      s.rc = MPI_Irecv(at(a[0]), static_cast<int>(a[1]), MPI_BYTE, static_cast<int>(a[2]),
                       static_cast<int>(a[3]), comm_of(a[4]), &rq);
      g_reqs[g_next_id] = rq;
      s.r[0] = g_next_id++;
      break;
    }
    case Op::kTest: {
      auto it = g_reqs.find(a[0]);
      if (it == g_reqs.end()) die("unknown request id from the application");
      // a[1]: how long (microseconds) to keep testing here before answering "not yet":
      // a waiting application sleeps meanwhile instead of asking again and again, which
      // costs two context switches per question on a machine with few cores.
      int flag = 0;
      MPI_Status st;
      const double until = MPI_Wtime() + static_cast<double>(a[1]) * 1e-6;
      for (;;) {
        s.rc = MPI_Test(&it->second, &flag, &st);
        if (flag || s.rc != MPI_SUCCESS || a[1] <= 0 || MPI_Wtime() >= until) break;
      }
      s.r[0] = flag;
      if (flag) {
        put_status(s, st, 1);
        g_reqs.erase(it);
      }
      break;
    }
    case Op::kIprobe:
    case Op::kImprobe: {
      int flag = 0;
      MPI_Status st;
      MPI_Message m = MPI_MESSAGE_NULL;
      if (s.op == Op::kIprobe)
        s.rc =
            MPI_Iprobe(static_cast<int>(a[0]), static_cast<int>(a[1]), comm_of(a[2]), &flag, &st);
      else
        s.rc = MPI_Improbe(static_cast<int>(a[0]), static_cast<int>(a[1]), comm_of(a[2]), &flag, &m,
                           &st);
      s.r[0] = flag;
      if (flag) {
        int bytes = 0;
        MPI_Get_count(&st, MPI_BYTE, &bytes);
        s.r[1] = st.MPI_SOURCE;
        s.r[2] = st.MPI_TAG;
        s.r[3] = bytes;
        if (s.op == Op::kImprobe) {
          g_msgs[g_next_id] = m;
          s.r[4] = g_next_id++;
        }
      }
      break;
    }
    case Op::kMrecv: {
      auto it = g_msgs.find(a[0]);
      if (it == g_msgs.end()) die("unknown message id from the application");
      MPI_Status st;
      s.rc = MPI_Mrecv(at(a[1]), static_cast<int>(a[2]), MPI_BYTE, &it->second, &st);
      g_msgs.erase(it);
      put_status(s, st, 1);
      break;
    }
    case Op::kRecv: {
      MPI_Status st;
      s.rc = MPI_Recv(at(a[0]), static_cast<int>(a[1]), MPI_BYTE, static_cast<int>(a[2]),
                      static_cast<int>(a[3]), comm_of(a[4]), &st);
      put_status(s, st, 1);
      break;
    }
    case Op::kCancel: {
      auto it = g_reqs.find(a[0]);
      if (it != g_reqs.end()) s.rc = MPI_Cancel(&it->second);
      break;
    }
    case Op::kRequestFree: {
      auto it = g_reqs.find(a[0]);
      if (it != g_reqs.end()) {
        s.rc = MPI_Request_free(&it->second);
        g_reqs.erase(it);
      }
      break;
    }
    case Op::kBarrier:
      s.rc = MPI_Barrier(comm_of(a[0]));
      break;
    case Op::kBcast:
      s.rc = MPI_Bcast(at(a[0]), static_cast<int>(a[1]), MPI_BYTE, static_cast<int>(a[2]),
                       comm_of(a[3]));
      break;
    case Op::kReduce: {
      int nt, no;
      const MPI_Datatype* types = predefined_types(&nt);
      const MPI_Op* ops = predefined_ops(&no);
      if (a[3] < 0 || a[3] >= nt || a[4] < 0 || a[4] >= no) die("bad reduction type or op");
      const void* sbuf = a[0] < 0 ? MPI_IN_PLACE : at(a[0]);
      void* rbuf = at(a[1]);
      int count = static_cast<int>(a[2]);
      MPI_Datatype t = types[a[3]];
      MPI_Op op = ops[a[4]];
      MPI_Comm c = comm_of(a[6]);
      switch (a[7]) {
        case 0:
          s.rc = MPI_Reduce(sbuf, rbuf, count, t, op, static_cast<int>(a[5]), c);
          break;
        case 1:
          s.rc = MPI_Allreduce(sbuf, rbuf, count, t, op, c);
          break;
        case 2:
          s.rc = MPI_Scan(sbuf, rbuf, count, t, op, c);
          break;
        default:
          s.rc = MPI_Exscan(sbuf, rbuf, count, t, op, c);
          break;
      }
      break;
    }
    case Op::kGather: {
      MPI_Comm c = comm_of(a[4]);
      int size;
      MPI_Comm_size(c, &size);
      const void* sbuf = a[0] < 0 ? MPI_IN_PLACE : at(a[0]);
      const int* counts = reinterpret_cast<const int*>(data);
      const int* displs = counts + size;
      if (a[5] == 1) {  // allgather
        if (a[6])
          s.rc = MPI_Allgatherv(sbuf, static_cast<int>(a[1]), MPI_BYTE, at(a[2]), counts, displs,
                                MPI_BYTE, c);
        else
          s.rc = MPI_Allgather(sbuf, static_cast<int>(a[1]), MPI_BYTE, at(a[2]),
                               static_cast<int>(a[1]), MPI_BYTE, c);
      } else {
        if (a[6])
          s.rc = MPI_Gatherv(sbuf, static_cast<int>(a[1]), MPI_BYTE, at(a[2]), counts, displs,
                             MPI_BYTE, static_cast<int>(a[3]), c);
        else
          s.rc = MPI_Gather(sbuf, static_cast<int>(a[1]), MPI_BYTE, at(a[2]),
                            static_cast<int>(a[1]), MPI_BYTE, static_cast<int>(a[3]), c);
      }
      break;
    }
    case Op::kScatter: {
      MPI_Comm c = comm_of(a[4]);
      int size;
      MPI_Comm_size(c, &size);
      const int* counts = reinterpret_cast<const int*>(data);
      const int* displs = counts + size;
      void* rbuf = a[1] < 0 ? MPI_IN_PLACE : at(a[1]);
      if (a[5])
        s.rc = MPI_Scatterv(at(a[0]), counts, displs, MPI_BYTE, rbuf, static_cast<int>(a[2]),
                            MPI_BYTE, static_cast<int>(a[3]), c);
      else
        s.rc = MPI_Scatter(at(a[0]), static_cast<int>(a[2]), MPI_BYTE, rbuf, static_cast<int>(a[2]),
                           MPI_BYTE, static_cast<int>(a[3]), c);
      break;
    }
    case Op::kAlltoall: {
      MPI_Comm c = comm_of(a[3]);
      int size;
      MPI_Comm_size(c, &size);
      const int* sc = reinterpret_cast<const int*>(data);
      const int* sd = sc + size;
      const int* rc = sd + size;
      const int* rd = rc + size;
      if (a[4])
        s.rc = MPI_Alltoallv(at(a[0]), sc, sd, MPI_BYTE, at(a[2]), rc, rd, MPI_BYTE, c);
      else
        s.rc = MPI_Alltoall(at(a[0]), static_cast<int>(a[1]), MPI_BYTE, at(a[2]),
                            static_cast<int>(a[1]), MPI_BYTE, c);
      break;
    }
    case Op::kCommDup: {
      MPI_Comm n;
      s.rc = MPI_Comm_dup(comm_of(a[0]), &n);
      new_comm(s, data, n);
      break;
    }
    case Op::kCommSplit: {
      MPI_Comm n;
      s.rc = MPI_Comm_split(comm_of(a[0]), static_cast<int>(a[1]), static_cast<int>(a[2]), &n);
      new_comm(s, data, n);
      break;
    }
    case Op::kCommSplitType: {
      MPI_Comm n;
      s.rc = MPI_Comm_split_type(comm_of(a[0]), static_cast<int>(a[1]), static_cast<int>(a[2]),
                                 MPI_INFO_NULL, &n);
      new_comm(s, data, n);
      break;
    }
    case Op::kCommFromRanks: {
      const int n = static_cast<int>(a[1]);
      std::vector<int> ranks(reinterpret_cast<const int*>(data),
                             reinterpret_cast<const int*>(data) + n);
      MPI_Group g = group_of_ranks(ranks.data(), n);
      MPI_Comm nc = MPI_COMM_NULL;
      if (a[3])
        s.rc = MPI_Comm_create(comm_of(a[0]), g, &nc);
      else
        s.rc = MPI_Comm_create_group(comm_of(a[0]), g, static_cast<int>(a[2]), &nc);
      MPI_Group_free(&g);
      new_comm(s, data, nc);
      break;
    }
    case Op::kCartCreate: {
      const int nd = static_cast<int>(a[1]);
      std::vector<int> dims(reinterpret_cast<const int*>(data),
                            reinterpret_cast<const int*>(data) + nd);
      std::vector<int> periods(reinterpret_cast<const int*>(data) + nd,
                               reinterpret_cast<const int*>(data) + 2 * nd);
      MPI_Comm nc;
      s.rc = MPI_Cart_create(comm_of(a[0]), nd, dims.data(), periods.data(), static_cast<int>(a[2]),
                             &nc);
      new_comm(s, data, nc);
      break;
    }
    case Op::kCartSub: {
      const int nd = static_cast<int>(a[1]);
      std::vector<int> remain(reinterpret_cast<const int*>(data),
                              reinterpret_cast<const int*>(data) + nd);
      MPI_Comm nc;
      s.rc = MPI_Cart_sub(comm_of(a[0]), remain.data(), &nc);
      new_comm(s, data, nc);
      break;
    }
    case Op::kCommFree: {
      MPI_Comm c = comm_of(a[0]);
      s.rc = MPI_Comm_free(&c);
      g_comms[static_cast<size_t>(a[0])] = MPI_COMM_NULL;
      break;
    }
    case Op::kAbort:
      MPI_Abort(MPI_COMM_WORLD, static_cast<int>(a[0]));
      break;
    default:
      die("unknown operation from the application");
  }
}

void* serve_agent(void*) {
  Slot& s = g_hdr->slots[kAgentSlot];
  unsigned char* data = slot_data(g_base, kAgentSlot);
  for (;;) {
    // A call is pending while req != resp (each side only ever increments its word), so a
    // call made before this loop first looked is not missed.
    wait_change(&s.req, s.resp.load(), &s.server_sleeping);
    s.rc = 0;
    if (s.op == Op::kPmixAllgather) {
      // Same steps as the direct-mode round (src/crcp/pmix_exchange.cpp), on behalf of the
      // restored agent: Put, Commit, Fence with data collection, Get from every rank.
      std::string key(reinterpret_cast<char*>(data), static_cast<size_t>(s.a[0]));
      std::vector<std::string> all;
      std::string err;
      s.rc = pmix_round(g_pmix_proc.nspace, g_hdr->size, key, data + s.a[0],
                        static_cast<size_t>(s.a[1]), &all, &err)
                 ? 0
                 : -1;
      size_t need = all.size() * 8;
      for (const std::string& b : all) need += b.size();
      if (s.rc == 0 && need > kSlotDataSize) {
        s.rc = -1;
        err = "coordination data too large for the channel";
      }
      if (s.rc == 0) {
        size_t at = all.size() * 8;
        for (size_t r = 0; r < all.size(); r++) {
          const uint64_t len = all[r].size();
          memcpy(data + 8 * r, &len, 8);
          memcpy(data + at, all[r].data(), all[r].size());
          at += all[r].size();
        }
      } else {
        snprintf(reinterpret_cast<char*>(data), 256, "%s", err.c_str());
      }
    } else {
      s.rc = -1;
    }
    bump_and_wake(&s.resp, &s.client_sleeping);
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: ompi-cr-proxy CHANNEL (started by ompi-cr-restore)\n");
    return 2;
  }
  // Signals meant for the application (the checkpoint trigger) must not end the proxy.
  signal(SIGUSR1, SIG_IGN);
  signal(SIGUSR2, SIG_IGN);
  // The proxy must end with its rank. Not PR_SET_PDEATHSIG: that fires when the *thread*
  // that forked us ends, and when ompi-cr-restore restores the image into itself (the old
  // PID taken) that thread is replaced by the restored ones while the process lives on.
  // A watchdog notices when the parent process is gone (we are reparented).
  static pid_t parent = getppid();
  pthread_t watchdog;
  pthread_create(
      &watchdog, nullptr,
      [](void*) -> void* {
        for (;;) {
          if (getppid() != parent) _exit(1);
          timespec ts = {0, 200 * 1000 * 1000};
          nanosleep(&ts, nullptr);
        }
        return nullptr;
      },
      nullptr);
  int fd = open(argv[1], O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077))
    die("cannot open the channel (missing, or not a private file of this user)");
  g_base = mmap(nullptr, kChannelSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  close(fd);
  if (g_base == MAP_FAILED) die("cannot map the channel");
  g_hdr = static_cast<Header*>(g_base);
  if (g_hdr->magic != kChannelMagic) die("the channel is not initialised");
  g_hdr->proxy_pid = getpid();

  int provided = 0;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    die("MPI_Init failed");
  MPI_Comm_group(MPI_COMM_WORLD, &g_world_group);
  g_comms = {MPI_COMM_WORLD, MPI_COMM_SELF};
  if (PMIx_Init(&g_pmix_proc, nullptr, 0) != PMIX_SUCCESS) die("PMIx_Init failed");
  MPI_Comm_rank(MPI_COMM_WORLD, &g_hdr->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_hdr->size);
  if (const char* p = getenv("OMPI_CR_MPIRUN_PID")) g_hdr->mpirun_pid = atoll(p);
  pthread_t agent;
  pthread_create(&agent, nullptr, serve_agent, nullptr);
  g_hdr->state.store(1);
  futex_wake_shared(&g_hdr->state);

  Slot& s = g_hdr->slots[kAppSlot];
  unsigned char* data = slot_data(g_base, kAppSlot);
  for (;;) {
    wait_change(&s.req, s.resp.load(), &s.server_sleeping);
    if (s.op == Op::kFinalize) {
      s.rc = MPI_Finalize();
      PMIx_Finalize(nullptr, 0);
      g_hdr->state.store(3);
      bump_and_wake(&s.resp, &s.client_sleeping);
      _exit(0);
    }
    serve_app(s, data);
    bump_and_wake(&s.resp, &s.client_sleeping);
  }
}
