/* ompi-cr memory hints: the public C API of libompi-cr.so (docs/hints.md is the guide).
 *
 * Applications and MPI libraries tell the checkpointer about their memory and get a say
 * in when and around what a checkpoint happens:
 *   - exclude an address range (its whole pages are not saved and read as zero after a
 *     restore), or always include one (overrides every exclusion);
 *   - receive buffers: a registered buffer that holds no message is excluded like a
 *     hinted range; the part that holds message data is always saved;
 *   - callbacks run at checkpoint, continue and restart;
 *   - critical sections that a checkpoint waits for (bounded by a timeout);
 *   - an explicit checkpoint request from inside the program.
 *
 * Every function may be called from any thread, at any time, also when the program does
 * not run under ompi-cr (the hints are then simply never used). None is
 * async-signal-safe. The range calls are cheap enough to be made per message.
 * All functions return OMPI_CR_SUCCESS (0) or one of the negative OMPI_CR_ERR_* codes
 * below; no function sets errno.
 *
 * Link with -lompi-cr, or look the symbols up with dlsym(RTLD_DEFAULT, "ompi_cr_exclude")
 * etc. to use them only when libompi-cr.so is preloaded (see docs/hints.md).
 */
#ifndef OMPI_CR_HINTS_H
#define OMPI_CR_HINTS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OMPI_CR_HINTS_API_VERSION 1

#if defined(__GNUC__)
#define OMPI_CR_API __attribute__((visibility("default")))
#else
#define OMPI_CR_API
#endif

/* A registration: exclude/include hint, receive buffer or callback. Always > 0 and unique
 * across the kinds while registered. A handle passed to the function of another kind
 * (e.g. a receive buffer handle to ompi_cr_hint_remove) is OMPI_CR_ERR_UNKNOWN_HANDLE. */
typedef int ompi_cr_handle_t;

#define OMPI_CR_SUCCESS 0
/* An argument is unusable: NULL address or NULL handle pointer, zero length, a range that
 * wraps around or ends beyond the user address space (2^57), a receive-buffer data range
 * outside the buffer, a NULL callback, cs_leave outside a critical section, or
 * ompi_cr_checkpoint() called where it would deadlock (inside a critical section of the
 * calling thread, or from a checkpoint callback). */
#define OMPI_CR_ERR_INVALID (-1)
/* The range overlaps a registered receive buffer (by at least one byte). Receive buffers
 * must be disjoint: two pending receives into the same bytes are erroneous in MPI, and
 * the "holds a message" state of the shared bytes would be ambiguous. Exclude and include
 * hints never conflict with anything (see the precedence rules in docs/hints.md). */
#define OMPI_CR_ERR_CONFLICT (-2)
/* The handle is <= 0, was never returned, was already removed, or belongs to another
 * kind of registration. */
#define OMPI_CR_ERR_UNKNOWN_HANDLE (-3)
/* ompi_cr_checkpoint(): the process does not run under the ompi-cr runtime. */
#define OMPI_CR_ERR_NO_RUNTIME (-4)
/* ompi_cr_checkpoint(): the checkpoint was given up because a critical section of another
 * thread stayed open longer than the runtime's timeout. The process continues unchanged. */
#define OMPI_CR_ERR_TIMEOUT (-5)
/* Out of memory, or more than about a million live registrations. Nothing was changed. */
#define OMPI_CR_ERR_NOMEM (-6)
/* ompi_cr_checkpoint(): the checkpoint failed for another reason (image could not be
 * written, threads could not be stopped, ...). The process continues unchanged; the
 * runtime's log (OMPI_CR_VERBOSE=1) names the reason. */
#define OMPI_CR_ERR_FAILED (-7)

/* A short English description of a return code ("success", "invalid argument", ...);
 * never NULL. */
OMPI_CR_API const char* ompi_cr_strerror(int code);

/* ---- memory ranges --------------------------------------------------------------- */

/* Do not save [addr, addr+len). Only pages that lie entirely inside the union of all
 * exclusions are left out; partial pages at the ends are saved. After a restore the
 * left-out pages read as zero. Overlapping exclusions are allowed (their union counts).
 * Errors: INVALID, NOMEM. */
OMPI_CR_API int ompi_cr_exclude(const void* addr, size_t len, ompi_cr_handle_t* handle);

/* Always save [addr, addr+len): every page it touches (also partially) is saved even when
 * exclude hints or empty receive buffers cover it. Errors: INVALID, NOMEM. */
OMPI_CR_API int ompi_cr_include(const void* addr, size_t len, ompi_cr_handle_t* handle);

/* Removes an exclude or include hint. Errors: UNKNOWN_HANDLE. */
OMPI_CR_API int ompi_cr_hint_remove(ompi_cr_handle_t handle);

/* ---- receive buffers ------------------------------------------------------------- */

/* Registers a receive buffer. It starts as holding NO message, so its whole pages are
 * excluded until ompi_cr_recvbuf_set_data says otherwise.
 * Errors: INVALID, CONFLICT (overlaps another registered receive buffer), NOMEM. */
OMPI_CR_API int ompi_cr_recvbuf_register(const void* addr, size_t len, ompi_cr_handle_t* handle);

/* Declares that bytes [offset, offset+len) of the buffer (offsets relative to its start)
 * hold message data and everything else in it does not. len == 0: the buffer holds
 * nothing (offset is then ignored). Replaces the previous state.
 * Errors: UNKNOWN_HANDLE, INVALID (the data range does not lie inside the buffer). */
OMPI_CR_API int ompi_cr_recvbuf_set_data(ompi_cr_handle_t handle, size_t offset, size_t len);

/* Forgets the buffer: its memory is saved normally again. Errors: UNKNOWN_HANDLE. */
OMPI_CR_API int ompi_cr_recvbuf_deregister(ompi_cr_handle_t handle);

/* ---- callbacks ------------------------------------------------------------------- */

typedef enum {
  OMPI_CR_PHASE_CHECKPOINT = 1, /* a checkpoint is about to be taken */
  OMPI_CR_PHASE_CONTINUE = 2,   /* the checkpoint is over (done or failed); same process */
  OMPI_CR_PHASE_RESTART = 3     /* this is a process restored from an image */
} ompi_cr_phase_t;

typedef void (*ompi_cr_callback_fn)(ompi_cr_phase_t phase, void* arg);

/* Registers fn(phase, arg). Callbacks run on the runtime's own thread while the
 * application threads run: CHECKPOINT in registration order before the checkpoint waits
 * for critical sections; CONTINUE (also after a failed checkpoint) and RESTART in reverse
 * registration order after the application threads were released. Every CHECKPOINT call is
 * followed by exactly one CONTINUE in the same process; a restored process sees RESTART
 * instead. A callback may call every function of this API except ompi_cr_checkpoint().
 * Errors: INVALID (fn == NULL or handle == NULL), NOMEM. */
OMPI_CR_API int ompi_cr_callback_register(ompi_cr_callback_fn fn, void* arg,
                                          ompi_cr_handle_t* handle);

/* After it returns, fn is not running (it waits for a running call to return, unless
 * called from a callback) and is not called again. Errors: UNKNOWN_HANDLE. */
OMPI_CR_API int ompi_cr_callback_unregister(ompi_cr_handle_t handle);

/* ---- critical sections ----------------------------------------------------------- */

/* Enters a critical section: no checkpoint is taken while any thread is inside one. A
 * pending checkpoint waits for the last section to close, up to the runtime's timeout
 * (then that checkpoint fails with a "timeout" error; the program is not stopped). While
 * a checkpoint is in progress, cs_enter blocks until it is over, except in a thread that is
 * already inside a section (sections nest per thread). Always returns OMPI_CR_SUCCESS
 * (INVALID only when the nesting depth would overflow an int). */
OMPI_CR_API int ompi_cr_cs_enter(void);

/* Leaves the innermost section of the calling thread. Errors: INVALID (not inside one). */
OMPI_CR_API int ompi_cr_cs_leave(void);

/* ---- explicit checkpoint --------------------------------------------------------- */

/* Checkpoints the process now (like ompi-checkpoint on its pid) and returns when it is
 * over and the CONTINUE or RESTART callbacks have run: 0 in the process that continues,
 * 1 in a process restored from this checkpoint's image, < 0 on error: NO_RUNTIME,
 * INVALID (called inside a critical section of this thread or from a callback), TIMEOUT,
 * NOMEM, FAILED. The image goes to the snapshot directory of the process
 * (OMPI_CR_SNAPSHOT_DIR, else $HOME). */
OMPI_CR_API int ompi_cr_checkpoint(void);

/* An explicit safe point for MPI programs that compute for long stretches without MPI
 * calls: a coordinated checkpoint of the job waits until every rank reaches a safe point
 * (any MPI call is one). Call it from the thread that makes the MPI calls, outside any
 * MPI call; while a checkpoint is pending it parks there like an MPI call would, else it
 * returns at once (a load and a branch). No effect outside an MPI job under ompi-cr. */
OMPI_CR_API void ompi_cr_checkpoint_point(void);

/* 1 when the process runs under the ompi-cr runtime (checkpoints can happen), else 0. */
OMPI_CR_API int ompi_cr_active(void);

#ifdef __cplusplus
}
#endif
#endif /* OMPI_CR_HINTS_H */
