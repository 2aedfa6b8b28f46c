// The global snapshot of an MPI job (DESIGN §7, docs/snapshot-format.md):
//
//   <base>/ompi_global_snapshot_<mpirun pid>.ckpt/
//     global_snapshot_meta.h5              HDF5: job, complete snapshots, per-rank records
//     <seq>/opal_snapshot_<rank>.ckpt/     per-rank image files
//
// The HDF5 file is the source of truth: a snapshot exists once its group is in the file,
// and the file is only ever replaced whole (copy, add, fsync, rename), so a crash at any
// moment leaves the previous complete snapshots usable. Seq directories without a group
// in the file are leftovers of an interrupted checkpoint and are ignored.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "crs/image_format.h"

namespace ocr::snapc {

// One rank's part of a snapshot. POD: the agents exchange it as raw bytes over PMIx.
// Strings are NUL-terminated within their arrays.
struct RankRecord {
  int32_t rank;
  int32_t pid;
  char host[64];
  char image_path[256];  // relative to the global snapshot dir: rank_image_relpath()
  uint64_t bytes_written, pages_saved;
  uint64_t pages_skipped[OCR_SKIP_REASONS];
  uint64_t image_hash;
  double write_seconds;
  uint64_t drained_messages, drained_bytes;
  char kind[16];  // "full" / "incremental"
};
static_assert(std::is_trivially_copyable_v<RankRecord> && std::is_standard_layout_v<RankRecord>);

struct JobInfo {
  int64_t mpirun_pid = 0;
  int32_t nprocs = 0;
  std::vector<std::string> argv;
  std::string cwd;
  // "NAME=value"; only OMPI_CR_* and OMPI_MCA_* are stored (others are dropped on commit:
  // the environment may hold secrets).
  std::vector<std::string> environment;
  std::string mpi_library;  // MPI_Get_library_version()
  std::vector<std::string> hosts;
};

struct SnapshotInfo {
  uint64_t seq = 0;
  std::string kind = "full";          // full | incremental
  int64_t parent_seq = -1;            // -1 for full; an earlier seq for incremental
  double started = 0, committed = 0;  // unix seconds
  double coordination_seconds = 0, write_seconds = 0, total_seconds = 0;
  bool term = false;
  bool complete = false;          // set by the reader (only complete snapshots are returned)
  std::vector<RankRecord> ranks;  // one per rank, in rank order
};

struct GlobalSnapshot {
  std::string dir;
  JobInfo job;
  std::vector<SnapshotInfo> snapshots;  // ascending seq, complete ones only
};

inline constexpr int kGlobalSnapshotFormatVersion = 1;
inline constexpr const char* kMetaFileName = "global_snapshot_meta.h5";

std::string global_snapshot_dir(const std::string& base, int64_t mpirun_pid);
std::string rank_image_relpath(uint64_t seq, int rank);

// The next sequence number: 1 + the largest seq present as a directory or in the
// metadata file, 0 if none. Creates gdir (0700, mkdir -p) if needed and refuses it when it
// is a symlink, not owned by the caller, or writable by group or others.
bool next_sequence(const std::string& gdir, uint64_t* seq, std::string* err);

// mkdir <gdir>/<seq> and <gdir>/<seq>/opal_snapshot_<rank>.ckpt (0700; existing ones are
// accepted after the same checks as gdir, so ranks may race).
bool prepare_rank_dir(const std::string& gdir, uint64_t seq, int rank, std::string* err);

// Rank 0, once every rank's image is committed: adds /snapshots/<seq> (state complete)
// to the metadata file atomically. Validates job and snap as the reader would.
bool commit_snapshot(const std::string& gdir, const JobInfo& job, const SnapshotInfo& snap,
                     std::string* err);

// Reads and validates the metadata file (owned by the caller, every field checked).
bool read_global_snapshot(const std::string& gdir, GlobalSnapshot* out, std::string* err);

}  // namespace ocr::snapc
