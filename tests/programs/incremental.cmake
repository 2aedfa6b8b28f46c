# Programs of the incremental-image end-to-end tests (tests/scripts/incremental.cmake).
# Included from tests/CMakeLists.txt. Plain C, like stateful_app; they land in the bin
# directory next to the tools.
#
#   dirty_app   writes an exact, chosen fraction of its pages between gated rounds
#               (incremental image size vs. fraction; chains; backends)
#   layout_app  mmap / munmap / mremap (move, grow) / brk growth and shrink / MAP_FIXED
#               replacement / MADV_DONTNEED between gated rounds
foreach(prog dirty_app layout_app)
  add_executable(${prog} ${CMAKE_CURRENT_LIST_DIR}/${prog}.c)
  set_target_properties(${prog} PROPERTIES C_STANDARD 11 C_EXTENSIONS ON)
  target_compile_options(${prog} PRIVATE -O2 -g -Wall -Wextra)
endforeach()
target_link_libraries(dirty_app PRIVATE m)
