// Shared helpers of the command-line tools (see tool_paths.h).
#include "tools/tool_paths.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "build_config.h"

namespace ocr::tools {

std::string bin_dir() {
  char buf[PATH_MAX];
  if (!realpath("/proc/self/exe", buf)) die("ompi-cr", "/proc/self/exe", strerror(errno));
  return std::filesystem::path(buf).parent_path().string();
}

std::string lib_dir() {
  return (std::filesystem::path(bin_dir()) / OMPI_CR_BIN_TO_LIB).lexically_normal().string();
}

std::string runtime_library() {
  return lib_dir() + "/libompi-cr.so";
}

std::string sibling_program(const std::string& name) {
  return bin_dir() + "/" + name;
}

std::string absolute_path(const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_relative()) {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) die("ompi-cr", "current directory", strerror(errno));
    p = std::filesystem::path(cwd) / p;
  }
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

void die(const char* tool, const std::string& what, const std::string& why, int code) {
  die(tool, what + ": " + why, code);
}

void die(const char* tool, const std::string& message, int code) {
  std::string line = message;
  for (char& c : line)
    if (c == '\n') c = ' ';  // one line, whatever the message carried
  fprintf(stderr, "%s: %s\n", tool, line.c_str());
  exit(code);
}

void parse_or_exit(CLI::App& app, int argc, char** argv, const char* tool) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    exit(app.exit(e));
  } catch (const CLI::CallForAllHelp& e) {
    exit(app.exit(e));
  } catch (const CLI::CallForVersion& e) {
    exit(app.exit(e));
  } catch (const CLI::ParseError& e) {
    die(tool, "invalid arguments", std::string(e.what()) + " (see --help)");
  }
}

std::string process_name(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  if (!std::getline(in, name) || name.empty()) return "?";
  return name;
}

}  // namespace ocr::tools
