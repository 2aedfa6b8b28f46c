# Coordinated checkpoint of whole MPI jobs (DESIGN.md sections 5 and 7): the programs of
# mpi_tests/programs run under `mpirun --am ft-enable-cr`, are checkpointed with
# `ompi-checkpoint <mpirun pid>` at several points and must end with exactly the output
# of a plain run; plus bad input. One ctest per program x scenario (harness.sh says what
# each scenario does). Included from the top-level CMakeLists.txt after launch.cmake.
#
#   ctest --test-dir build -L '^crcp$'       all of these (about 9 minutes on 2 cores; a bare
#                                            "-L crcp" also matches the label crcp_wrappers)
#   ctest --test-dir build -L '^restart$'    only the restart scenarios (about 5 minutes)
#   cmake --build build --target crcp_programs
#
# Like launch.cmake, nothing has to be installed: the harness points Open MPI at the
# build tree's component and parameter set.
find_package(MPI COMPONENTS C QUIET)
find_program(OCR_MPIRUN mpirun)
find_program(OCR_BASH bash)
if(NOT MPI_C_FOUND OR NOT OCR_MPIRUN OR NOT OCR_BASH)
  message(STATUS "crcp tests: skipped (needs MPI for C, mpirun and bash)")
  return()
endif()

set(OCR_CRCP_PROGRAMS ring halo2d cg master_worker alltoallv datatypes cart_split eager_flood
    unequal_compute persistent_probe)
set(OCR_CRCP_PROGRAM_DIR ${CMAKE_BINARY_DIR}/mpi_tests/programs)
add_custom_target(crcp_programs)
foreach(prog ${OCR_CRCP_PROGRAMS})
  add_executable(crcp_${prog} ${CMAKE_CURRENT_LIST_DIR}/programs/${prog}.c)
  set_target_properties(crcp_${prog} PROPERTIES
    OUTPUT_NAME ${prog} RUNTIME_OUTPUT_DIRECTORY ${OCR_CRCP_PROGRAM_DIR}
    C_STANDARD 11 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
  target_compile_options(crcp_${prog} PRIVATE -O2)
  target_link_libraries(crcp_${prog} PRIVATE MPI::MPI_C m)
  add_dependencies(crcp_programs crcp_${prog})
endforeach()

get_property(ocr_crcp_component_dir GLOBAL PROPERTY OMPI_CR_BUILD_COMPONENT_DIR)
get_property(ocr_crcp_param_set_dir GLOBAL PROPERTY OMPI_CR_BUILD_PARAM_SET_DIR)
if(NOT TARGET ompi_cr_mca_shmem OR NOT ocr_crcp_component_dir OR NOT ocr_crcp_param_set_dir)
  message(STATUS "crcp tests: skipped (the Open MPI launcher component is not built)")
  return()
endif()

# ocr_crcp_test(PROGRAM NP ITERS WORK SCENARIO...)
function(ocr_crcp_test prog np iters work)
  foreach(scenario ${ARGN})
    set(name mpi_crcp_${prog}_${scenario})
    add_test(NAME ${name}
             COMMAND ${OCR_BASH} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/crcp/harness.sh ${scenario} ${prog} ${np}
                     $<TARGET_FILE_DIR:ompi-checkpoint> "${ocr_crcp_component_dir}"
                     "${ocr_crcp_param_set_dir}" ${OCR_CRCP_PROGRAM_DIR} ${OCR_MPIRUN}
                     -- ${iters} ${work})
    if(scenario MATCHES "^(restart|generations)")
      set(labels "mpi;crcp;restart")
    else()
      set(labels "mpi;crcp")
    endif()
    set_tests_properties(${name} PROPERTIES
      LABELS "${labels}"
      TIMEOUT 300
      RESOURCE_LOCK ompi_cr_mpi
      SKIP_RETURN_CODE 77
      ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OCR_WAIT_LIMIT=240")
  endforeach()
endfunction()

# Parameters: ranks, iterations, work per iteration; each run takes 2-4 s here (2 cores,
# oversubscribed). Scenarios: am (no checkpoint), ckpt (one), multi (four, two at once),
# term (checkpoint, then the job ends) and bad input (badpid, noam, unwritable); restart
# scenarios (label "restart" too): restart (checkpoint, kill -9, ompi-restart),
# restart_multi (two checkpoints, restart of the newer, then of the older with -s),
# generations (three restarted generations, each checkpointed and killed but the last),
# restart_term (--term, then restart), restart_incremental (full + incremental
# checkpoints, restart of an incremental snapshot, --incremental checkpoint of the
# restarted job), restart_inflight (restart of a snapshot with drained messages).
# am and ckpt run for ring only: the other programs' multi does everything ckpt does (and
# runs under --am), restart checkpoints at the same point.
ocr_crcp_test(ring 3 350 400 am ckpt multi term badpid noam unwritable
               restart restart_multi generations restart_term restart_incremental)
ocr_crcp_test(halo2d 4 400 400 multi restart restart_multi restart_incremental)
ocr_crcp_test(cg 3 800 150 multi restart generations)
ocr_crcp_test(master_worker 3 1600 300 multi restart restart_multi)
ocr_crcp_test(alltoallv 4 600 120 multi restart)
ocr_crcp_test(datatypes 3 600 200 multi restart restart_incremental)
ocr_crcp_test(cart_split 4 500 200 multi restart generations)
ocr_crcp_test(eager_flood 3 16 15 multi term restart restart_multi restart_term restart_inflight)
ocr_crcp_test(unequal_compute 3 64 1500 multi restart)
ocr_crcp_test(persistent_probe 2 800 400 multi restart)
