// MPI_Init / MPI_Finalize and the hooks the generated wrappers call for collectives,
// communicators, the replay log and unsupported calls.
#include <pmix.h>
#include <stdarg.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "crcp/backend.h"
#include "crcp/comm_table.h"
#include "crcp/coordinator.h"
#include "crcp/crcp_abort.h"
#include "crcp/crcp_custom.h"
#include "crcp/crcp_fn_ids.h"
#include "crcp/crcp_hooks.h"
#include "crcp/library_footprint.h"
#include "crcp/protocol_state.h"
#include "crcp/proxy_client.h"
#include "crcp/replay_log.h"
#include "crcp/restored_rank.h"
#include "crcp/vrequest.h"

namespace ocr::crcp {

void fatal(const char* fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char line[1200];
  int n = snprintf(line, sizeof line, "ompi-cr: rank %d: %s\n", g_proto.world_rank, msg);
  if (write(2, line, static_cast<size_t>(n)) < 0) { /* aborting anyway */
  }
  int initialized = 0, finalized = 0;
  PMPI_Initialized(&initialized);
  PMPI_Finalized(&finalized);
  if (proxied())
    proxy_call(ocr::proxy::Op::kAbort, {70});  // the old library has no job
  else if (initialized && !finalized)
    PMPI_Abort(MPI_COMM_WORLD, 70);
  _exit(70);
}

void vlog(const char* fmt, ...) {
  static const bool verbose = getenv("OMPI_CR_VERBOSE") != nullptr;
  if (!verbose) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char line[1200];
  int n = snprintf(line, sizeof line, "ompi-cr[rank %d]: %s\n", g_proto.world_rank, msg);
  if (write(2, line, static_cast<size_t>(n)) < 0) { /* nothing to do */
  }
}

namespace {

pmix_proc_t g_pmix_proc;
bool g_pmix_up = false;

// Our PMIx reference is dropped at exit, after MPI_Finalize (DESIGN.md §9: earlier can
// hang the job, never makes mpirun report an improper exit). Until then the agent can
// still answer a checkpoint request with "finalized" in a coordination round.
void pmix_at_exit() {
  if (g_pmix_up) PMIx_Finalize(nullptr, 0);
  g_pmix_up = false;
}

int init_common(int* argc, char*** argv, int required, int* provided) {
  const ProcessFootprint before = current_footprint();
  int rc = PMPI_Init_thread(argc, argv, required, provided);
  if (rc != MPI_SUCCESS) return rc;
  const ProcessFootprint after = current_footprint();
  for (pid_t t : after.tids)
    if (!before.tids.count(t)) g_proto.library_tids.push_back(t);
  for (int fd : after.fds)
    if (!before.fds.count(fd)) g_proto.library_fds.push_back(fd);

  g_proto.thread_level = *provided;
  set_thread_multiple(*provided == MPI_THREAD_MULTIPLE);
  PMPI_Comm_rank(MPI_COMM_WORLD, &g_proto.world_rank);
  PMPI_Comm_size(MPI_COMM_WORLD, &g_proto.world_size);
  counters_init(g_proto.world_size);
  comm_register(MPI_COMM_WORLD, 1);
  comm_register(MPI_COMM_SELF, comm_id_mix(2, static_cast<uint64_t>(g_proto.world_rank)));
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  PMPI_Get_library_version(version, &len);
  g_proto.library_version.assign(version, strnlen(version, sizeof version));
  while (!g_proto.library_version.empty() &&
         (g_proto.library_version.back() == '\n' || g_proto.library_version.back() == ' '))
    g_proto.library_version.pop_back();
  if (size_t comma = g_proto.library_version.find(','); comma != std::string::npos)
    g_proto.library_version.resize(comma);

  if (PMIx_Init(&g_pmix_proc, nullptr, 0) == PMIX_SUCCESS) {
    g_pmix_up = true;
    atexit(pmix_at_exit);
  } else {
    vlog("PMIx_Init failed: checkpoints of this job are not possible");
  }
  g_proto.phase.store(static_cast<int>(MpiPhase::kRunning));
  coordinator_mpi_ready(g_pmix_up ? &g_pmix_proc : nullptr);
  vlog("MPI initialized: %d ranks, thread level %d, %zu library threads, %zu library fds",
       g_proto.world_size, *provided, g_proto.library_tids.size(), g_proto.library_fds.size());
  return rc;
}

}  // namespace

void release_pmix() {
  pmix_at_exit();
}

void forget_direct_library() {
  g_pmix_up = false;  // that PMIx client is gone with the old job
  g_proto.library_tids.clear();
  g_proto.library_fds.clear();
}

}  // namespace ocr::crcp

using namespace ocr::crcp;

extern "C" {

int ocr_crcp_MPI_Init(int* argc, char*** argv) {
  int provided = 0;
  return init_common(argc, argv, MPI_THREAD_SINGLE, &provided);
}

int ocr_crcp_MPI_Init_thread(int* argc, char*** argv, int required, int* provided) {
  return init_common(argc, argv, required, provided);
}

int ocr_crcp_MPI_Finalize(void) {
  // MPI_Finalize is collective over the job: while a rank is behind its targets, the
  // others wait here rather than leave MPI.
  if (checkpoint_pending()) park_here(true);
  {
    std::lock_guard<std::mutex> lk(g_proto.mu);
    g_proto.phase.store(static_cast<int>(MpiPhase::kFinalizing));
  }
  int rc = proxied() ? proxy_call(ocr::proxy::Op::kFinalize, {}).rc : PMPI_Finalize();
  g_proto.phase.store(static_cast<int>(MpiPhase::kFinalized));
  return rc;
}

void ocr_crcp_coll_enter(MPI_Comm comm) {
  CommInfo* c = comm_lookup(comm);
  if (checkpoint_pending()) park_here(true, c ? c->id : 0);
  if (c)
    bump(c->seq);
  else if (comm != MPI_COMM_NULL)
    comm_require(comm, "a collective");
}

void ocr_crcp_coll_exit(MPI_Comm) {}

MPI_Request ocr_crcp_coll_request(MPI_Request real, MPI_Comm comm) {
  VRequest* r = vreq_new(ReqKind::kCollective, comm_lookup(comm));
  r->real = real;
  r->active = true;
  active_add(r);
  return handle_of(r);
}

void ocr_crcp_comm_created(MPI_Comm parent, MPI_Comm newcomm, int fn) {
  if (newcomm == MPI_COMM_NULL) return;
  CommInfo* p = comm_require(parent, ocr_crcp_fn_name(fn));
  // Same value on every member: the parent's id and collective count identify the
  // creating call, the lowest world rank which of the communicators it created.
  CommInfo* c = comm_register(newcomm, 0);
  c->id = comm_id_mix(comm_id_mix(comm_id_mix(p->id, p->seq.load()), static_cast<uint64_t>(fn)),
                      static_cast<uint64_t>(c->min_world));
}

void ocr_crcp_comm_freeing(MPI_Comm comm) {
  // MPI_Comm_free is collective: counted like one, so that at a cut either every member
  // still has the communicator or none has (a restarted job rebuilds exactly the
  // communicators its ranks hold, with all their members).
  CommInfo* c = comm_lookup(comm);
  if (!c) return;
  if (checkpoint_pending()) park_here(true, c->id);
  bump(c->seq);
  comm_unregister(comm);
}

void ocr_crcp_replay_append(int fn, const void* record, size_t len) {
  replay_log_append(fn, record, len);
}

int ocr_crcp_unsupported(const char* name) {
  fatal(
      "%s is not supported under checkpoint/restart (ompi-cr cannot keep its state "
      "consistent); run without --am ft-enable-cr",
      name);
}

int ocr_crcp_unsupported_in_proxy(const char* name) {
  fatal("%s is not supported in a restarted job (proxy mode); see docs/proxy.md", name);
}

int ocr_crcp_MPI_Comm_create_group(MPI_Comm comm, MPI_Group group, int tag, MPI_Comm* newcomm) {
  ocr_crcp_safe_point();
  CommInfo* p = comm_require(comm, "MPI_Comm_create_group");
  if (proxied()) return ocr_crcp_unsupported_in_proxy("MPI_Comm_create_group");
  // Collective over the group only: the parent's collective count differs between
  // members. The group's members, the tag and how often this rank created a communicator
  // from the same (group, tag) on this parent identify the call instead; the same key
  // names a pseudo-communicator whose count aligns the members at a checkpoint.
  int gsize = 0;
  PMPI_Group_size(group, &gsize);
  std::vector<int> granks(static_cast<size_t>(gsize)), gworld(static_cast<size_t>(gsize));
  for (int i = 0; i < gsize; i++) granks[static_cast<size_t>(i)] = i;
  MPI_Group wg;
  PMPI_Comm_group(MPI_COMM_WORLD, &wg);
  PMPI_Group_translate_ranks(group, gsize, granks.data(), wg, gworld.data());
  PMPI_Group_free(&wg);
  uint64_t h = 0;
  for (int w : gworld) h = comm_id_mix(h, static_cast<uint64_t>(w));
  CommInfo* pseudo =
      pseudo_comm(comm_id_mix(comm_id_mix(p->id, h), static_cast<uint64_t>(tag) + 11), gworld);
  if (checkpoint_pending()) park_here(true, pseudo->id);
  bump(pseudo->seq);
  int rc = PMPI_Comm_create_group(comm, group, tag, newcomm);
  if (rc != MPI_SUCCESS || *newcomm == MPI_COMM_NULL) return rc;
  CommInfo* c = comm_register(*newcomm, 0);
  uint64_t& calls = p->create_group_calls[{tag, h}];
  c->id = comm_id_mix(comm_id_mix(comm_id_mix(p->id, h), static_cast<uint64_t>(tag) + 7), ++calls);
  ReplayCreateGroup rec{static_cast<uint64_t>(reinterpret_cast<uintptr_t>(comm)),
                        static_cast<uint64_t>(reinterpret_cast<uintptr_t>(group)),
                        static_cast<int64_t>(tag),
                        static_cast<uint64_t>(reinterpret_cast<uintptr_t>(*newcomm))};
  replay_log_append(OCR_FN_MPI_Comm_create_group, &rec, sizeof rec);
  return rc;
}

}  // extern "C"
