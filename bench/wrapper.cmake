# wrapper_overhead: per-call cost of the MPI wrappers in direct mode (MPI_ vs PMPI_ names
# in the same process). Run it with `mpirun -np 1 --am ft-enable-cr`; see the program's
# header comment and docs/benchmarks.md.
find_package(MPI COMPONENTS C QUIET)
if(MPI_C_FOUND)
  add_executable(wrapper_overhead ${CMAKE_CURRENT_LIST_DIR}/programs/wrapper_overhead.c)
  target_link_libraries(wrapper_overhead PRIVATE MPI::MPI_C)
  target_compile_options(wrapper_overhead PRIVATE -O2)
endif()
