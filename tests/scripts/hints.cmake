# Memory hints tests. Included from tests/CMakeLists.txt after the unit tests are defined.
#
# The hints unit tests need the hints objects (the test_*.cpp glob links only ocr_core).
foreach(t unit_test_hints_math unit_test_hints_api unit_test_hints_runtime)
  if(TARGET ${t})
    target_sources(${t} PRIVATE $<TARGET_OBJECTS:ocr_hints>)
  endif()
endforeach()

# End to end (hints.sh with tests/programs/hints_app.c), registered like the tests of
# tests.cmake (same label, lock and environment). tests.cmake is included after this file,
# so its helper function and option are not defined yet: the option is honoured once set.
if((NOT DEFINED OMPI_CR_E2E_TESTS OR OMPI_CR_E2E_TESTS) AND TARGET hints_app AND TARGET ompi-checkpoint)
  find_program(OCR_BASH bash REQUIRED)
  add_test(NAME e2e_hints
           COMMAND ${OCR_BASH} ${CMAKE_CURRENT_LIST_DIR}/hints.sh
                   $<TARGET_FILE_DIR:ompi-checkpoint> $<TARGET_FILE:hints_app>)
  set_tests_properties(e2e_hints PROPERTIES
    LABELS "e2e;hints"
    TIMEOUT 300
    RESOURCE_LOCK ompi_cr_e2e
    SKIP_RETURN_CODE 77
    ENVIRONMENT "OCR_WAIT_LIMIT=240;OCR_TOOL_TIMEOUT=240")
  # A critical section open past the checkpoint timeout: a clean error, never a hang.
  add_test(NAME e2e_hints_cs_timeout
           COMMAND ${OCR_BASH} ${CMAKE_CURRENT_LIST_DIR}/hints.sh
                   $<TARGET_FILE_DIR:ompi-checkpoint> $<TARGET_FILE:hints_app> cs-timeout)
  set_tests_properties(e2e_hints_cs_timeout PROPERTIES
    LABELS "e2e;hints"
    TIMEOUT 300
    RESOURCE_LOCK ompi_cr_e2e
    SKIP_RETURN_CODE 77
    ENVIRONMENT "OCR_WAIT_LIMIT=240;OCR_TOOL_TIMEOUT=240")
endif()
