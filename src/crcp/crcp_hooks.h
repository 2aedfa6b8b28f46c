/* The contract between the generated MPI wrappers (crcp_wrappers.c, written at build time
 * by gen_wrappers.py from spec/apis.json and spec/wrap_spec.txt) and the hand-written CRCP
 * core (the other files of src/crcp). Plain C: the generated file is C so that it takes
 * its prototypes from the installed mpi.h unchanged.
 *
 * Categories (column 2 of spec/wrap_spec.txt) and the code the generator emits for each:
 *   query        return PMPI_X(args);                         (no safe point: callable
 *                                                              before MPI_Init / after
 *                                                              MPI_Finalize, or trivially local)
 *   local        ocr_crcp_safe_point(); return PMPI_X(args);
 *   logged       ocr_crcp_safe_point(); rc = PMPI_X(args); on success append a replay
 *                record (arguments by kind, output handle) with ocr_crcp_replay_append()
 *   collective   ocr_crcp_coll_enter(comm); rc = PMPI_X(args); ocr_crcp_coll_exit(comm);
 *   collective_nb  as collective, the request the library returns is wrapped:
 *                *request = ocr_crcp_coll_request(real_request, comm)
 *   comm_create  collective on the parent, then ocr_crcp_comm_created(parent, *newcomm,
 *                fn id) and a replay record
 *   comm_free    ocr_crcp_safe_point(); ocr_crcp_comm_freeing(*comm); PMPI_X(args);
 *   custom       return ocr_crcp_MPI_X(args);   (implemented by the core; the generator
 *                also declares these in crcp_custom.h so a signature mismatch is a
 *                compile error)
 *   unsupported  return ocr_crcp_unsupported("MPI_X");  (prints one line naming the call
 *                and aborts the job: never silently bypasses the protocol)
 */
#ifndef OMPI_CR_CRCP_HOOKS_H
#define OMPI_CR_CRCP_HOOKS_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Non-zero while a checkpoint of the job is being coordinated. Read on every wrapper
 * entry (one relaxed load and a predicted branch: the per-call price of a safe point). */
extern int ocr_crcp_ckpt_pending;
void ocr_crcp_safe_point_slow(void);
static inline void ocr_crcp_safe_point(void) {
  if (__builtin_expect(__atomic_load_n(&ocr_crcp_ckpt_pending, __ATOMIC_RELAXED), 0))
    ocr_crcp_safe_point_slow();
}

/* Collectives: safe point (a rank at its target parks here) and the communicator's
 * sequence number. coll_exit marks the end of a blocking collective. */
void ocr_crcp_coll_enter(MPI_Comm comm);
void ocr_crcp_coll_exit(MPI_Comm comm);
/* Nonblocking collectives: the request the application sees. */
MPI_Request ocr_crcp_coll_request(MPI_Request real, MPI_Comm comm);

/* Communicator lifetime. `fn` is the generated function id (OCR_FN_MPI_X in
 * crcp_fn_ids.h) of the creating call. newcomm may be MPI_COMM_NULL (split with
 * MPI_UNDEFINED). */
void ocr_crcp_comm_created(MPI_Comm parent, MPI_Comm newcomm, int fn);
void ocr_crcp_comm_freeing(MPI_Comm comm);

/* Replay log of object-creating calls (record layout: docs/wrappers.md, "Replay records"). */
void ocr_crcp_replay_append(int fn, const void* record, size_t len);

/* Fails loudly: prints "ompi-cr: MPI_X is not supported under checkpoint/restart ..." and
 * aborts the job. Returns only to satisfy the wrapper's return type. */
int ocr_crcp_unsupported(const char* name);

/* ---- proxy mode (a rank restored by ompi-restart; docs/proxy.md) -------------------
 * Non-zero in a restored rank: its MPI library is a separate process (ompi-cr-proxy)
 * reached through a shared-memory channel. The old library's code and memory are still
 * mapped and keep answering calls that only read or build local objects (datatypes,
 * groups, ops, attributes, queries on communicators that existed at the checkpoint);
 * everything that communicates goes to ocr_proxy_MPI_X (crcp_proxy.h). */
extern int ocr_crcp_proxied;
/* Non-zero when `comm` was created after the restart (it has no object in the old
 * library, so even local calls on it go to ocr_proxy_MPI_X). */
int ocr_crcp_proxy_born(MPI_Comm comm);
/* The default of every ocr_proxy_MPI_X the core does not implement: prints
 * "ompi-cr: MPI_X is not supported in a restarted job (proxy mode) ..." and aborts. */
int ocr_crcp_unsupported_in_proxy(const char* name);

#ifdef __cplusplus
}
#endif

#endif
