# Checkpoint requests outside MPI's lifetime (before MPI_Init, after MPI_Finalize, a job
# that never calls MPI): a clear refusal, never a hang, the job unaffected.
find_package(MPI COMPONENTS C QUIET)
find_program(OCR_MPIRUN mpirun)
find_program(OCR_BASH bash)
get_property(ocr_lc_component_dir GLOBAL PROPERTY OMPI_CR_BUILD_COMPONENT_DIR)
get_property(ocr_lc_param_set_dir GLOBAL PROPERTY OMPI_CR_BUILD_PARAM_SET_DIR)
if(NOT MPI_C_FOUND OR NOT OCR_MPIRUN OR NOT OCR_BASH OR NOT TARGET ompi_cr_mca_shmem)
  message(STATUS "lifecycle tests: skipped (need MPI, mpirun, bash and the launcher component)")
  return()
endif()
add_executable(ocr_lifecycle_phases ${CMAKE_CURRENT_LIST_DIR}/lifecycle/phases.c)
set_target_properties(ocr_lifecycle_phases PROPERTIES
  OUTPUT_NAME phases RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/mpi_tests/lifecycle)
target_link_libraries(ocr_lifecycle_phases PRIVATE MPI::MPI_C ${CMAKE_DL_LIBS})
add_executable(ocr_lifecycle_subcomm_p2p ${CMAKE_CURRENT_LIST_DIR}/lifecycle/subcomm_p2p.c)
set_target_properties(ocr_lifecycle_subcomm_p2p PROPERTIES
  OUTPUT_NAME subcomm_p2p RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/mpi_tests/lifecycle)
target_link_libraries(ocr_lifecycle_subcomm_p2p PRIVATE MPI::MPI_C)
foreach(case before_init after_finalize no_mpi checkpoint_point subcomm)
  add_test(NAME mpi_lifecycle_${case}
           COMMAND ${OCR_BASH} ${CMAKE_CURRENT_LIST_DIR}/lifecycle/lifecycle.sh ${case}
                   $<TARGET_FILE_DIR:ompi-checkpoint> "${ocr_lc_component_dir}"
                   "${ocr_lc_param_set_dir}" $<TARGET_FILE_DIR:ocr_lifecycle_phases> ${OCR_MPIRUN})
  set_tests_properties(mpi_lifecycle_${case} PROPERTIES
    LABELS "mpi;lifecycle" TIMEOUT 240 RESOURCE_LOCK ompi_cr_mpi
    ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
endforeach()
