// ompi-restart's job mode: restart an MPI job from its global snapshot directory
// (DESIGN §1, §3, §7). The whole snapshot is validated first (metadata, the chosen
// sequence number, every rank's image with its incremental chain and checksums, the files
// the images map, the process count); only then is mpirun executed in place of this
// process (same PID, so `ompi-checkpoint <PID>` reaches the restarted job), starting
// `ompi-cr-restore --job GDIR --seq N` once per rank.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ocr::tools::restart {

inline constexpr const char* kTool = "ompi-restart";

struct JobOptions {
  std::string snapshot;  // the global snapshot directory, as given
  bool seq_given = false;
  uint64_t seq = 0;
  std::string hostfile, machinefile;
  std::string mpirun_opts;  // split like a shell would (quotes, backslashes)
  std::string mpirun;       // --mpirun; else $OMPI_CR_MPIRUN; else mpirun from PATH
  bool showme = false;      // print the command, run nothing
  bool info = false;        // print what the snapshot holds, run nothing
  bool verbose = false;
};

// Validates, then execs mpirun (does not return), or prints and exits 0 for --showme /
// --info. Every refusal is one line "ompi-restart: <what>: <why>" and exit 1.
[[noreturn]] void restart_job(const JobOptions& opt);

// Splits `s` into words like a POSIX shell without expansions: blanks separate words,
// '...' is literal, "..." keeps \" \\ \$ \` escapes, a backslash outside quotes escapes
// the next character. False with *why for an unterminated quote or a trailing backslash.
bool split_shell_words(const std::string& s, std::vector<std::string>* out, std::string* why);

// One word quoted for a POSIX shell (unchanged when it needs no quoting).
std::string shell_quote(const std::string& word);

}  // namespace ocr::tools::restart
