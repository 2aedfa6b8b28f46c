// What the runtime (libompi-cr.so) offers the MPI layer (libompi-cr-mpi.so): a hook the
// agent thread calls each time it is woken, and the per-rank image step of a coordinated
// checkpoint. The coordination itself (PMIx rounds, drain, collective alignment) lives in
// src/crcp; this is the boundary between the two libraries.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "crs/image_writer.h"

namespace ocr {

// Called on the agent thread after every wake-up (trigger signal or wake_agent()), after
// single-process requests were looked at. Runs the job protocol when a job request is
// there.
using JobWakeHook = void (*)();
void set_job_wake_hook(JobWakeHook hook);

// Wakes the agent thread as the trigger signal would.
void wake_agent();

struct JobImageRequest {
  const char* dir = nullptr;         // existing directory of the rank's image (0700)
  const char* final_path = nullptr;  // the image file (committed atomically)
  const char* kind = "full";         // full | incremental | auto
  uint64_t seq = 0;                  // the job's snapshot sequence number (image header)
  // The MPI library's own threads: neither parked nor saved (a restored rank gets a new
  // library from its proxy). The agent is always exempt.
  const pid_t* exempt_tids = nullptr;
  int nexempt = 0;
  const int* runtime_fds = nullptr;  // the library's sockets, shm and session files
  int nfds = 0;
  const AddressRange* mpi_areas = nullptr;  // the library's transport segments
  int nmpi_areas = 0;
};

struct JobImageOutcome {
  ImageWriteResult wr;
  uint64_t micros = 0;
  uint32_t threads = 0;
  bool incremental = false;
  char message[512] = {};
};

// On the agent thread: CHECKPOINT callbacks, critical-section barrier, park the
// application threads, write the image, release, CONTINUE callbacks. Returns 0 when the
// image is committed, -1 with outcome->message on failure, and 1 in a restored process
// that resumes here (after RESTART callbacks; the caller continues its own restart path).
int job_image(const JobImageRequest& request, JobImageOutcome* outcome);

// The job's snapshot that holds the image job_image() just wrote was not committed: that
// image must not become the parent of the next incremental one (whose metadata would name
// a snapshot that does not exist). The next image is full.
void job_image_discard();

// Number of times this process was restored (0 in the original process).
uint32_t restart_count();

}  // namespace ocr
