# MPI benchmarks (bench/mpi/*.c), run by bench/mpi_bench.sh: pingpong and allreduce_lat
# (plain mpirun vs mpirun --am ft-enable-cr) and mem_hold, the subject of the checkpoint
# latency scenario. Included from bench/bench.cmake. Build them with
#   cmake --build build --target mpi_bench_programs
find_package(MPI COMPONENTS C QUIET)
if(NOT MPI_C_FOUND)
  message(STATUS "MPI benchmarks: skipped (needs MPI for C)")
  return()
endif()
add_custom_target(mpi_bench_programs)
foreach(prog pingpong allreduce_lat mem_hold)
  add_executable(mpibench_${prog} ${CMAKE_CURRENT_LIST_DIR}/mpi/${prog}.c)
  set_target_properties(mpibench_${prog} PROPERTIES
    OUTPUT_NAME ${prog} RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench/mpi
    C_STANDARD 11 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
  target_compile_options(mpibench_${prog} PRIVATE -O2)
  target_link_libraries(mpibench_${prog} PRIVATE MPI::MPI_C)
  add_dependencies(mpi_bench_programs mpibench_${prog})
endforeach()
