// Shared helpers of the command-line tools: where the sibling programs and the runtime
// library live (found from the running executable, so the build tree and any install
// prefix work alike), path normalisation, argument parsing and the one-line error rule.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace ocr::tools {

// Directory of the running executable (realpath of /proc/self/exe).
std::string bin_dir();
// Directory of libompi-cr.so: bin_dir() + OMPI_CR_BIN_TO_LIB, lexically normalised.
std::string lib_dir();
std::string runtime_library();                         // <lib_dir>/libompi-cr.so
std::string sibling_program(const std::string& name);  // <bin_dir>/<name>

// Absolute and lexically normal ("a/../b" -> "b"), without resolving symlinks, so the
// path names what the user typed even if it does not exist yet.
std::string absolute_path(const std::string& path);

// Prints "<tool>: <what>: <why>" (or "<tool>: <message>") on stderr and exits.
[[noreturn]] void die(const char* tool, const std::string& what, const std::string& why,
                      int code = 1);
[[noreturn]] void die(const char* tool, const std::string& message, int code = 1);

// Parses argv with app. --help / --version print and exit 0; a usage error becomes one
// line "<tool>: invalid arguments: <why> (see --help)" and exit 1. Returns on success.
void parse_or_exit(CLI::App& app, int argc, char** argv, const char* tool);

// Contents of /proc/<pid>/comm without the newline; "?" if unreadable.
std::string process_name(int pid);

}  // namespace ocr::tools
