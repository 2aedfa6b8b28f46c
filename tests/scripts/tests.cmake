# End-to-end tests of single-process checkpoint/restart (tests/scripts/*.sh).
# Included from tests/CMakeLists.txt (directory scope tests/).
#
# Every test here carries the label "e2e" (bad-input cases also "bad-input"):
#   ctest --test-dir build -L e2e       only the end-to-end tests
#   ctest --test-dir build -LE e2e      only the unit tests
# -DOMPI_CR_E2E_TESTS=OFF leaves them out altogether. They share one RESOURCE_LOCK so
# that "ctest -j" runs them one at a time (each holds several hundred MB of images and
# memory) while unit tests still run in parallel.
option(OMPI_CR_E2E_TESTS "Register the end-to-end checkpoint/restart tests" ON)
if(NOT OMPI_CR_E2E_TESTS)
  return()
endif()

find_program(OCR_BASH bash REQUIRED)

# Where the tools land: the directory of ompi-checkpoint when that target exists, else
# the runtime output directory every executable of the project goes to.
if(TARGET ompi-checkpoint)
  set(OCR_E2E_BIN_DIR $<TARGET_FILE_DIR:ompi-checkpoint>)
elseif(CMAKE_RUNTIME_OUTPUT_DIRECTORY)
  set(OCR_E2E_BIN_DIR ${CMAKE_RUNTIME_OUTPUT_DIRECTORY})
else()
  set(OCR_E2E_BIN_DIR ${CMAKE_BINARY_DIR}/bin)
endif()
set(OCR_E2E_APP $<TARGET_FILE:stateful_app>)
set(OCR_E2E_SCRIPTS ${CMAKE_CURRENT_LIST_DIR})

# ocr_e2e_test(NAME SCRIPT [TIMEOUT seconds] [LABELS l...] [ARGS a...])
function(ocr_e2e_test name script)
  cmake_parse_arguments(E "" "TIMEOUT" "LABELS;ARGS" ${ARGN})
  if(NOT E_TIMEOUT)
    set(E_TIMEOUT 300)
  endif()
  add_test(NAME e2e_${name}
           COMMAND ${OCR_BASH} ${OCR_E2E_SCRIPTS}/${script} ${OCR_E2E_BIN_DIR} ${OCR_E2E_APP} ${E_ARGS})
  set_tests_properties(e2e_${name} PROPERTIES
    LABELS "e2e;${E_LABELS}"
    TIMEOUT ${E_TIMEOUT}
    RESOURCE_LOCK ompi_cr_e2e
    SKIP_RETURN_CODE 77
    # the scripts poll with an upper bound below TIMEOUT so a hang is reported clearly
    ENVIRONMENT "OCR_WAIT_LIMIT=240;OCR_TOOL_TIMEOUT=240")
endfunction()

# Checkpoint / kill -9 / restore at an early, a middle and a late point (256 MiB heap).
ocr_e2e_test(equivalence equivalence.sh TIMEOUT 600
             ARGS --points "3 17 33" -- --steps 40 --heap-mb 256 --step-ms 50 --exit-code 5)
# The same with worker threads (quiescence of every thread, per-thread stacks and TLS).
ocr_e2e_test(equivalence_threads equivalence.sh TIMEOUT 600
             ARGS --points "4 20" -- --steps 30 --heap-mb 64 --step-ms 40 --threads 2 --exit-code 6)
# Checkpoint twice and continue; then restore both images.
ocr_e2e_test(continue continue.sh TIMEOUT 600 ARGS 6 24)
# Checkpoint a restored process, three generations.
ocr_e2e_test(generations generations.sh TIMEOUT 600 ARGS 5 15 27)
# --term ends the process after the image; the restore completes the run.
ocr_e2e_test(term term.sh ARGS 12)

# Bad input: one test per case (see bad_input.sh).
foreach(case truncated flip_header flip_records flip_pages not_an_image missing_image
             program_changed other_owner not_cr_pid no_such_pid snapdir_below_file snapdir_proc)
  ocr_e2e_test(bad_${case} bad_input.sh LABELS bad-input ARGS ${case})
endforeach()
