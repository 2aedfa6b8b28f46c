# Launcher tests (issue 4, "Launch"): mpirun --am ft-enable-cr with Debian's Open MPI
# 4.1 mpirun, the generic `mpiexec ompi-cr-run` route, and a checkpoint of one rank of a
# running job. Included from the top-level CMakeLists.txt after src/ and src/launch/.
#
#   ctest --test-dir build -L mpi          these (and any other MPI test)
#   ctest --test-dir build -L launch       only these
#
# Nothing has to be installed: the scripts point Open MPI at the build tree's component
# (OMPI_MCA_mca_base_component_path=<build>/lib/openmpi:SYS_DEFAULT:USER_DEFAULT, the
# build tree's copy first) and parameter set (mca_base_param_file_path_force).
find_package(MPI COMPONENTS C QUIET)
find_program(OCR_MPIRUN mpirun)
find_program(OCR_BASH bash)
if(NOT MPI_C_FOUND OR NOT OCR_MPIRUN OR NOT OCR_BASH)
  message(STATUS "launcher tests: skipped (needs MPI for C, mpirun and bash)")
  return()
endif()

set(OCR_LAUNCH_TEST_DIR ${CMAKE_CURRENT_LIST_DIR}/launch)
foreach(prog mpi_hello nompi)
  add_executable(ocr_launch_${prog} ${OCR_LAUNCH_TEST_DIR}/${prog}.c)
  set_target_properties(ocr_launch_${prog} PROPERTIES
    OUTPUT_NAME ${prog} RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/mpi_tests/launch)
  target_compile_options(ocr_launch_${prog} PRIVATE -Wno-unused-function)
endforeach()
target_link_libraries(ocr_launch_mpi_hello PRIVATE MPI::MPI_C)

get_property(ocr_component_dir GLOBAL PROPERTY OMPI_CR_BUILD_COMPONENT_DIR)
get_property(ocr_param_set_dir GLOBAL PROPERTY OMPI_CR_BUILD_PARAM_SET_DIR)
if(NOT TARGET ompi_cr_mca_shmem OR NOT ocr_component_dir OR NOT ocr_param_set_dir)
  message(STATUS "launcher tests: only the generic route (the Open MPI component is not built)")
endif()

# ocr_launch_test(CASE [TIMEOUT s] [NEEDS_COMPONENT])
function(ocr_launch_test case)
  cmake_parse_arguments(L "NEEDS_COMPONENT" "TIMEOUT" "" ${ARGN})
  if(L_NEEDS_COMPONENT AND NOT TARGET ompi_cr_mca_shmem)
    return()
  endif()
  if(NOT L_TIMEOUT)
    set(L_TIMEOUT 180)
  endif()
  add_test(NAME mpi_launch_${case}
           COMMAND ${OCR_BASH} ${OCR_LAUNCH_TEST_DIR}/launch.sh ${case}
                   $<TARGET_FILE_DIR:ompi-cr-run> "${ocr_component_dir}" "${ocr_param_set_dir}"
                   $<TARGET_FILE_DIR:ocr_launch_mpi_hello> ${OCR_MPIRUN})
  set_tests_properties(mpi_launch_${case} PROPERTIES
    LABELS "mpi;launch"
    TIMEOUT ${L_TIMEOUT}
    RESOURCE_LOCK ompi_cr_mpi
    SKIP_RETURN_CODE 77
    ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OCR_WAIT_LIMIT=120")
endfunction()

ocr_launch_test(am NEEDS_COMPONENT)            # 1: every rank under the runtime, same output
ocr_launch_test(plain NEEDS_COMPONENT)         # 2: without --am nothing changes
ocr_launch_test(exits NEEDS_COMPONENT TIMEOUT 300) # 3: no MPI, THREAD_MULTIPLE, MPI_Abort, exit(3)
ocr_launch_test(options NEEDS_COMPONENT)       # user -x / env_list / --mca / --tune combine
ocr_launch_test(remote NEEDS_COMPONENT)        # ranks under a second daemon (as on another node)
ocr_launch_test(generic)                       # 4: mpiexec -n 2 ompi-cr-run ./mpi_hello
ocr_launch_test(checkpoint NEEDS_COMPONENT TIMEOUT 300) # 5: ompi-checkpoint of one rank
