// ompi-restart's job mode (see restart_job.h): validate a global snapshot completely, then
// become mpirun, which starts `ompi-cr-restore --job GDIR --seq N` once per rank. Nothing
// is launched, created or changed before every check has passed.
#include "tools/restart_job.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "crs/restore_check.h"
#include "snapc/global_snapshot.h"
#include "tools/snapshot_summary.h"
#include "tools/tool_paths.h"

extern char** environ;

namespace ocr::tools::restart {

namespace {

using ull = unsigned long long;

[[noreturn]] void refuse(const std::string& what, const std::string& why) {
  die(kTool, what, why);
}

void say(const JobOptions& opt, const std::string& line) {
  if (opt.verbose) fprintf(stderr, "%s: %s\n", kTool, line.c_str());
}

std::string errno_text(int e) {
  return strerror(e);
}

// ---------- the snapshot ----------

const snapc::SnapshotInfo& choose_snapshot(const JobOptions& opt, const snapc::GlobalSnapshot& g) {
  const std::string& gdir = g.dir;
  if (g.snapshots.empty())
    refuse(gdir, "holds no complete snapshot (its metadata records none; nothing to restart)");
  const snapc::SnapshotInfo& newest = g.snapshots.back();
  if (!opt.seq_given) return newest;
  for (const snapc::SnapshotInfo& s : g.snapshots)
    if (s.seq == opt.seq) return s;
  const std::string what = "snapshot " + std::to_string(opt.seq) + " of " + gdir;
  const std::string hint = "; the newest complete snapshot is " + std::to_string(newest.seq);
  struct stat st;
  if (lstat((gdir + "/" + std::to_string(opt.seq)).c_str(), &st) == 0)
    refuse(what,
           "not complete (its metadata has no complete record: an interrupted checkpoint)" + hint);
  refuse(what, "does not exist" + hint);
}

// Every rank's image: the path the metadata records is the canonical one, the file is a
// regular file of ours, the whole chain reads and verifies (every record and checksum),
// it is the image the metadata recorded, and the files it maps are unchanged.
void validate_ranks(const JobOptions& opt, const snapc::GlobalSnapshot& g,
                    const snapc::SnapshotInfo& s) {
  for (const snapc::RankRecord& row : s.ranks) {
    const std::string what =
        "rank " + std::to_string(row.rank) + " of snapshot " + std::to_string(s.seq);
    const std::string expected = snapc::rank_image_relpath(s.seq, row.rank);
    const std::string recorded(row.image_path, strnlen(row.image_path, sizeof row.image_path));
    if (recorded != expected)
      refuse(what, "its image_path '" + recorded + "' in " + g.dir + "/" + snapc::kMetaFileName +
                       " is not the expected '" + expected + "'");
    const std::string path = g.dir + "/" + expected;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) refuse(what, "image " + path + ": " + errno_text(errno));
    if (S_ISLNK(st.st_mode)) refuse(what, "image " + path + ": is a symbolic link");
    if (!S_ISREG(st.st_mode)) refuse(what, "image " + path + ": not a regular file");
    std::vector<Image> chain;
    std::string err;
    ReadOptions ro;  // verify every page run, owner rule on
    if (!validate_restore(path, ro, &chain, &err)) refuse(what, err);
    const Image& img = chain.front();
    if (img.header.header_hash != row.image_hash) {
      char b[160];
      snprintf(b, sizeof b, "(header hash %016llx, the metadata recorded %016llx)",
               static_cast<ull>(img.header.header_hash), static_cast<ull>(row.image_hash));
      refuse(what, "image " + path + " is not the image the checkpoint wrote " + b);
    }
    if (static_cast<int64_t>(img.header.pid) != row.pid)
      refuse(what, "image " + path + " holds pid " + std::to_string(img.header.pid) +
                       ", the metadata recorded pid " + std::to_string(row.pid));
    uint64_t bytes = 0;
    for (const Image& link : chain) {
      struct stat ls;
      if (stat(link.path.c_str(), &ls) == 0) bytes += static_cast<uint64_t>(ls.st_size);
    }
    say(opt, what + ": " + path + " verified (" + std::to_string(chain.size()) + " image" +
                 (chain.size() == 1 ? "" : "s") + ", " + human_bytes(bytes) + ")");
  }
}

// ---------- mpirun's command line ----------

bool is_np_option(const std::string& w) {
  return w == "-np" || w == "--np" || w == "-n" || w == "--n" || w == "-c";
}

// Takes -np/-n/--np/--n/-c K (also "-np=K") out of `words`; returns the last K, or -1.
long long take_process_count(std::vector<std::string>* words) {
  long long k = -1;
  std::vector<std::string> kept;
  for (size_t i = 0; i < words->size(); i++) {
    const std::string& w = (*words)[i];
    std::string value;
    std::string opt = w;
    const size_t eq = w.find('=');
    if (eq != std::string::npos && w[0] == '-') {
      opt = w.substr(0, eq);
      value = w.substr(eq + 1);
    }
    if (!is_np_option(opt)) {
      kept.push_back(w);
      continue;
    }
    if (eq == std::string::npos) {
      if (i + 1 >= words->size()) refuse("--mpirun_opts", w + " has no value");
      value = (*words)[++i];
    }
    char* end = nullptr;
    errno = 0;
    const long long v = strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end || errno || v < 1)
      refuse("--mpirun_opts", opt + " '" + value + "' is not a process count");
    k = v;
  }
  *words = std::move(kept);
  return k;
}

// The user must not preload the runtime into the restorers: the images carry it.
void refuse_cr_launch(const std::vector<std::string>& words) {
  for (size_t i = 0; i < words.size(); i++) {
    const std::string& w = words[i];
    if (w != "--am" && w != "-am" && w != "--tune" && w != "-tune") continue;
    if (i + 1 < words.size() && words[i + 1].find("ft-enable-cr") != std::string::npos)
      refuse("--mpirun_opts", w + " " + words[i + 1] +
                                  " must not be given: the restored ranks already carry the "
                                  "checkpoint/restart runtime, ompi-restart configures the job");
  }
}

std::string find_mpirun(const JobOptions& opt) {
  std::string name = opt.mpirun;
  const char* source = "--mpirun";
  if (name.empty()) {
    const char* env = getenv("OMPI_CR_MPIRUN");
    if (env && *env) {
      name = env;
      source = "OMPI_CR_MPIRUN";
    }
  }
  if (!name.empty() && name.find('/') != std::string::npos) {
    const std::string path = absolute_path(name);
    struct stat st;
    if (stat(path.c_str(), &st) != 0)
      refuse(std::string("mpirun ") + path + " (" + source + ")", errno_text(errno));
    if (!S_ISREG(st.st_mode) || access(path.c_str(), X_OK) != 0)
      refuse(std::string("mpirun ") + path + " (" + source + ")", "not an executable file");
    return path;
  }
  if (name.empty()) name = "mpirun";
  const char* path_env = getenv("PATH");
  std::string dirs = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  size_t pos = 0;
  while (pos <= dirs.size()) {
    size_t end = dirs.find(':', pos);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(pos, end - pos);
    if (dir.empty()) dir = ".";
    const std::string cand = absolute_path(dir + "/" + name);
    struct stat st;
    if (stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(cand.c_str(), X_OK) == 0)
      return cand;
    pos = end + 1;
  }
  refuse(name, "not found in PATH (give --mpirun PATH or set OMPI_CR_MPIRUN)");
}

// ---------- the environment ----------

// The ft-enable-cr parameter file next to the tools: installed as
// <prefix>/share/ompi-cr/ft-enable-cr, in the build tree as
// <build>/share/openmpi/amca-param-sets/ft-enable-cr (src/launch/CMakeLists.txt).
std::string find_param_file() {
  const std::string bin = bin_dir();
  const std::string cands[] = {
      absolute_path(bin + "/../share/ompi-cr/ft-enable-cr"),
      absolute_path(bin + "/../share/openmpi/amca-param-sets/ft-enable-cr"),
  };
  for (const std::string& c : cands)
    if (access(c.c_str(), R_OK) == 0) return c;
  refuse("parameter file ft-enable-cr",
         "not found (looked in " + cands[0] + " and " + cands[1] + ")");
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  std::string t = s.substr(a, b - a + 1);
  if (t.size() >= 2 && (t[0] == '"' || t[0] == '\'') && t.back() == t[0])
    t = t.substr(1, t.size() - 2);
  return t;
}

bool valid_key(const std::string& k) {
  return !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// "name = value" and "--mca name value" lines, '#' comments: the syntax the launcher
// component (src/launch/mca_shmem_ompicr.c, apply_param_file) accepts.
std::vector<std::pair<std::string, std::string>> read_param_file(const std::string& file) {
  std::ifstream in(file);
  if (!in) refuse("parameter file " + file, errno_text(errno));
  std::vector<std::pair<std::string, std::string>> out;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::string s = trim(line);
    if (s.empty()) continue;
    std::string key, value;
    if (s.rfind("--mca ", 0) == 0 || s.rfind("-mca ", 0) == 0) {
      std::string rest = trim(s.substr(s[1] == '-' ? 6 : 5));
      const size_t sp = rest.find_first_of(" \t");
      key = rest.substr(0, sp);
      value = sp == std::string::npos ? "" : rest.substr(sp + 1);
    } else {
      const size_t eq = s.find('=');
      if (eq == std::string::npos)
        refuse("parameter file " + file + ":" + std::to_string(lineno), "expected name = value");
      key = s.substr(0, eq);
      value = s.substr(eq + 1);
    }
    key = trim(key);
    value = trim(value);
    if (!valid_key(key))
      refuse("parameter file " + file + ":" + std::to_string(lineno),
             "invalid parameter name '" + key + "'");
    out.emplace_back("OMPI_MCA_" + key, value);
  }
  return out;
}

// Entries of the stored job environment that describe the old job's launch, not the
// user's settings: mpirun sets them for each rank (ORTE's and PMIx's wiring, the session
// directories, the oversubscription flags), or they would make mpirun preload the runtime
// again (--am / --tune ft-enable-cr and the export list carrying LD_PRELOAD). The new
// mpirun sets its own.
bool launch_state(const std::string& name) {
  static const char* const exact[] = {
      "OMPI_CR_MPIRUN_PID",
      "OMPI_MCA_ess",
      "OMPI_MCA_pmix",
      "OMPI_MCA_initial_wdir",
      "OMPI_MCA_mpi_oversubscribe",
      "OMPI_MCA_rmaps_base_oversubscribe",
      "OMPI_MCA_mpi_yield_when_idle",
      "OMPI_MCA_shmem_RUNTIME_QUERY_hint",
      "OMPI_MCA_mca_base_param_file_prefix",
      "OMPI_MCA_mca_base_envar_file_prefix",
      "OMPI_MCA_mca_base_env_list_internal",
  };
  for (const char* e : exact)
    if (name == e) return true;
  return name.rfind("OMPI_MCA_orte_", 0) == 0 || name.rfind("OMPI_MCA_ess_base_", 0) == 0;
}

// mca_base_env_list without the LD_PRELOAD=... the launcher component may have appended.
std::string without_preload(const std::string& list, const std::string& delim) {
  std::string out;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(delim, pos);
    if (end == std::string::npos) end = list.size();
    const std::string item = list.substr(pos, end - pos);
    if (!item.empty() && item.rfind("LD_PRELOAD", 0) != 0) out += (out.empty() ? "" : delim) + item;
    pos = end + delim.size();
  }
  return out;
}

struct Environment {
  std::vector<std::pair<std::string, std::string>> set;  // what ompi-restart adds, in order

  void add(const JobOptions& opt, const std::string& name, const std::string& value,
           const std::string& from) {
    if (getenv(name.c_str())) {
      say(opt, name + " kept as the environment sets it (" + from + " says " + value + ")");
      return;
    }
    for (const auto& e : set)
      if (e.first == name) return;  // an earlier source wins
    set.emplace_back(name, value);
  }
  const std::string* get(const std::string& name) const {
    for (const auto& e : set)
      if (e.first == name) return &e.second;
    return nullptr;
  }
};

Environment job_environment(const JobOptions& opt, const snapc::GlobalSnapshot& g) {
  Environment env;
  env.set.emplace_back("OMPI_CR_MPIRUN_PID", std::to_string(getpid()));
  std::string delim = ";";
  for (const std::string& e : g.job.environment)
    if (e.rfind("OMPI_MCA_mca_base_env_list_delimiter=", 0) == 0) delim = e.substr(e.find('=') + 1);
  if (delim.empty()) delim = ";";
  const std::string meta = g.dir + "/" + snapc::kMetaFileName;
  for (const std::string& e : g.job.environment) {
    const size_t eq = e.find('=');
    if (eq == std::string::npos) continue;
    const std::string name = e.substr(0, eq);
    std::string value = e.substr(eq + 1);
    if (launch_state(name)) {
      say(opt, "not restoring " + name + " (launch state of the original job)");
      continue;
    }
    if (name == "OMPI_MCA_mca_base_env_list") {
      value = without_preload(value, delim);
      if (value.empty()) continue;
    }
    env.add(opt, name, value, meta);
  }
  const std::string file = find_param_file();
  for (const auto& [name, value] : read_param_file(file)) env.add(opt, name, value, file);
  return env;
}

// ---------- quoting ----------

bool plain_word(const std::string& w) {
  return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("_@%+=:,./-^", c) != nullptr;
  });
}

}  // namespace

bool split_shell_words(const std::string& s, std::vector<std::string>* out, std::string* why) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  for (size_t i = 0; i < s.size(); i++) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(cur);
      cur.clear();
      in_word = false;
    } else if (c == '\'') {
      const size_t end = s.find('\'', i + 1);
      if (end == std::string::npos) {
        *why = "unterminated single quote";
        return false;
      }
      cur += s.substr(i + 1, end - i - 1);
      i = end;
      in_word = true;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < s.size() && s[j] != '"'; j++) {
        if (s[j] == '\\' && j + 1 < s.size() && strchr("\"\\$`", s[j + 1])) j++;
        cur += s[j];
      }
      if (j >= s.size()) {
        *why = "unterminated double quote";
        return false;
      }
      i = j;
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 >= s.size()) {
        *why = "trailing backslash";
        return false;
      }
      if (s[i + 1] != '\n') cur += s[i + 1];
      i++;
      in_word = true;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(cur);
  *out = std::move(words);
  return true;
}

std::string shell_quote(const std::string& w) {
  if (plain_word(w)) return w;
  std::string q = "'";
  for (char c : w) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

void restart_job(const JobOptions& opt) {
  const std::string gdir = absolute_path(opt.snapshot);

  // Options first: cheap, and their errors do not depend on the snapshot.
  std::vector<std::string> user_words;
  std::string why;
  if (!split_shell_words(opt.mpirun_opts, &user_words, &why))
    refuse("--mpirun_opts \"" + opt.mpirun_opts + "\"", why);
  refuse_cr_launch(user_words);
  const long long asked_np = take_process_count(&user_words);
  std::string hostfile, machinefile;
  for (auto [given, out, name] : {std::tuple{&opt.hostfile, &hostfile, "hostfile"},
                                  std::tuple{&opt.machinefile, &machinefile, "machinefile"}}) {
    if (given->empty()) continue;
    *out = absolute_path(*given);  // the job's cwd becomes ours below
    if (access(out->c_str(), R_OK) != 0) refuse(std::string(name) + " " + *out, errno_text(errno));
  }

  // The metadata: readable, ours, complete, and the chosen snapshot in it.
  struct stat st;
  const std::string meta = gdir + "/" + snapc::kMetaFileName;
  if (lstat(meta.c_str(), &st) != 0) {
    if (errno == ENOENT)
      refuse(gdir,
             std::string("not an ompi-cr global snapshot (no ") + snapc::kMetaFileName + " in it)");
    refuse(meta, errno_text(errno));
  }
  snapc::GlobalSnapshot g;
  std::string err;
  if (!snapc::read_global_snapshot(gdir, &g, &err)) die(kTool, err);
  const snapc::SnapshotInfo& snap = choose_snapshot(opt, g);

  if (opt.info) {
    print_global_snapshot(g);
    printf("\nRestart:     snapshot %llu%s, %d process%s\n", static_cast<ull>(snap.seq),
           opt.seq_given ? "" : " (the newest complete one; -s N chooses another)", g.job.nprocs,
           g.job.nprocs == 1 ? "" : "es");
    exit(0);
  }

  if (asked_np >= 0 && asked_np != g.job.nprocs)
    refuse("process count", "the snapshot has " + std::to_string(g.job.nprocs) +
                                " processes; --mpirun_opts asks for " + std::to_string(asked_np));
  const std::string mpirun = find_mpirun(opt);
  const std::string restore = sibling_program("ompi-cr-restore");
  if (access(restore.c_str(), X_OK) != 0) refuse(restore, errno_text(errno));
  Environment env = job_environment(opt, g);

  say(opt, "restarting snapshot " + std::to_string(snap.seq) + " (" + snap.kind + ") of " + gdir +
               ": " + std::to_string(g.job.nprocs) + " processes");
  validate_ranks(opt, g, snap);

  // The command.
  std::vector<std::string> cmd{mpirun};
  if (!hostfile.empty()) cmd.insert(cmd.end(), {"--hostfile", hostfile});
  if (!machinefile.empty()) cmd.insert(cmd.end(), {"--machinefile", machinefile});
  cmd.insert(cmd.end(), user_words.begin(), user_words.end());
  cmd.insert(cmd.end(), {"-np", std::to_string(g.job.nprocs)});
  // mpirun passes every OMPI_* variable to the ranks anyway; -x makes it explicit. Open
  // MPI refuses -x together with mca_base_env_list, so then the list alone carries them.
  bool env_list = getenv("OMPI_MCA_mca_base_env_list") || env.get("OMPI_MCA_mca_base_env_list");
  for (const std::string& w : user_words)
    env_list = env_list || w.find("mca_base_env_list") != std::string::npos;
  if (!env_list)
    for (const auto& e : env.set) cmd.insert(cmd.end(), {"-x", e.first});
  cmd.insert(cmd.end(), {restore, "--job", gdir, "--seq", std::to_string(snap.seq)});
  if (opt.verbose) cmd.push_back("-v");

  const bool cwd_ok = !g.job.cwd.empty() && stat(g.job.cwd.c_str(), &st) == 0 &&
                      S_ISDIR(st.st_mode) && access(g.job.cwd.c_str(), X_OK) == 0;
  if (opt.showme) {
    std::string line;
    if (cwd_ok) line = "cd " + shell_quote(g.job.cwd) + " && ";
    for (const auto& e : env.set) line += e.first + "=" + shell_quote(e.second) + " ";
    for (size_t i = 0; i < cmd.size(); i++) line += (i ? " " : "") + shell_quote(cmd[i]);
    printf("%s\n", line.c_str());
    exit(0);
  }

  for (const auto& e : env.set) setenv(e.first.c_str(), e.second.c_str(), 1);
  if (cwd_ok && chdir(g.job.cwd.c_str()) == 0)
    say(opt, "working directory " + g.job.cwd);
  else
    say(opt, "the job's working directory " + g.job.cwd + " is not accessible; staying here");
  if (opt.verbose) {
    std::string line;
    for (size_t i = 0; i < cmd.size(); i++) line += (i ? " " : "") + shell_quote(cmd[i]);
    say(opt, "exec " + line);
  }
  std::vector<char*> argv;
  for (std::string& a : cmd) argv.push_back(a.data());
  argv.push_back(nullptr);
  fflush(stdout);
  fflush(stderr);
  execve(mpirun.c_str(), argv.data(), environ);
  die(kTool, "cannot execute " + mpirun, errno_text(errno), 127);
}

}  // namespace ocr::tools::restart
