# Multi-threaded programs run by the end-to-end thread tests (tests/scripts/mt.cmake).
# Included from tests/CMakeLists.txt. Each is plain C with the conventions of
# stateful_app (see tests/programs/mt_common.h) and lands in the bin directory next to
# the tools.
#
#   mt_workers  mutex + condition-variable pipeline, TLS, per-thread PRNGs, thread handles
#   mt_churn    threads created, joined and detached all the time
#   mt_omp      OpenMP (libgomp) parallel regions, reductions, threadprivate, tasks
#   mt_blocked  threads blocked in futex waits, mutexes, sleeps, signal handlers on a
#               sigaltstack, pipes (--pipe), tid-owned locks (--tid-locks), glibc's loader
#               lock (--dl-lock)
#   mt_many     64 threads
#   mt_identity per-thread kernel identity: cached gettid(), names, affinity, nice
find_package(Threads REQUIRED)
find_package(OpenMP COMPONENTS C)

foreach(prog mt_workers mt_churn mt_blocked mt_many mt_identity)
  add_executable(${prog} ${CMAKE_CURRENT_LIST_DIR}/${prog}.c)
  set_target_properties(${prog} PROPERTIES C_STANDARD 11 C_EXTENSIONS ON)
  target_compile_options(${prog} PRIVATE -O2 -g -Wall -Wextra)
  target_link_libraries(${prog} PRIVATE Threads::Threads)
endforeach()

if(OpenMP_C_FOUND)
  add_executable(mt_omp ${CMAKE_CURRENT_LIST_DIR}/mt_omp.c)
  set_target_properties(mt_omp PROPERTIES C_STANDARD 11 C_EXTENSIONS ON)
  target_compile_options(mt_omp PRIVATE -O2 -g -Wall -Wextra)
  target_link_libraries(mt_omp PRIVATE OpenMP::OpenMP_C Threads::Threads)
else()
  message(WARNING "OpenMP for C not found: mt_omp and its tests are not built")
endif()
