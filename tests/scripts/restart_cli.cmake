# ompi-restart's job mode without MPI (tests/scripts/restart_cli.sh): a fake global
# snapshot is built from real single-process images (stateful_app under ompi-cr-run,
# checkpointed with ompi-checkpoint --pid) and HDF5 metadata committed by
# tests/support/make_fake_job_snapshot; ompi-restart then runs with --mpirun pointing to a
# script that records its call. Cases: --showme, -i, the exec into mpirun, the default
# and chosen sequence number, and every bad input (one test each, label bad-input).
#
#   ctest --test-dir build -L restart_cli
if(DEFINED OMPI_CR_E2E_TESTS AND NOT OMPI_CR_E2E_TESTS)
  return()
endif()
if(NOT TARGET ompi-restart OR NOT TARGET ompi-checkpoint OR NOT TARGET stateful_app)
  return()
endif()
find_program(OCR_BASH bash REQUIRED)

# The helper stays out of the bin directory the tools are installed from.
add_executable(make_fake_job_snapshot ${PROJECT_SOURCE_DIR}/tests/support/make_fake_job_snapshot.cpp)
target_link_libraries(make_fake_job_snapshot PRIVATE ocr_core ocr_snapc)
set_target_properties(make_fake_job_snapshot PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/support)

set(OCR_RESTART_CLI_CASES
  showme info exec default_seq choose_seq
  missing_dir not_a_snapshot not_hdf5 seq_missing seq_incomplete
  rank_missing rank_corrupt rank_truncated image_path image_swapped program_changed
  np_mismatch am_ft_enable_cr other_owner bad_quote no_mpirun)
set(OCR_RESTART_CLI_BAD
  missing_dir not_a_snapshot not_hdf5 seq_missing seq_incomplete
  rank_missing rank_corrupt rank_truncated image_path image_swapped program_changed
  np_mismatch am_ft_enable_cr other_owner bad_quote no_mpirun)
foreach(case ${OCR_RESTART_CLI_CASES})
  set(labels "e2e;restart_cli")
  if(case IN_LIST OCR_RESTART_CLI_BAD)
    list(APPEND labels bad-input)
  endif()
  add_test(NAME restart_cli_${case}
           COMMAND ${OCR_BASH} ${CMAKE_CURRENT_LIST_DIR}/restart_cli.sh
                   $<TARGET_FILE_DIR:ompi-restart> $<TARGET_FILE:stateful_app>
                   $<TARGET_FILE:make_fake_job_snapshot> ${case})
  set_tests_properties(restart_cli_${case} PROPERTIES
    LABELS "${labels}"
    TIMEOUT 180
    RESOURCE_LOCK ompi_cr_e2e
    SKIP_RETURN_CODE 77
    ENVIRONMENT "OCR_WAIT_LIMIT=120;OCR_TOOL_TIMEOUT=120")
endforeach()
