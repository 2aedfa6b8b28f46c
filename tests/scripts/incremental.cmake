# End-to-end tests of incremental images (issue 3, DESIGN.md section 4 step 4): size of an
# incremental image vs. the fraction of pages written, chains of five, layout changes,
# compaction, chains continued by restored processes, bad parents, dirty-tracking backends.
# Programs: tests/programs/incremental.cmake (dirty_app, layout_app) and stateful_app.
# Included from tests/CMakeLists.txt; tests/scripts/tests.cmake (the e2e option, the
# helper function) comes later in that glob, so this file registers its tests itself,
# with the same label, lock and environment, and honours OMPI_CR_E2E_TESTS once set.
#
#   ctest --test-dir build -L incremental           all of them
#   ctest --test-dir build -L incremental -E bad_   without the bad-parent cases
if(DEFINED OMPI_CR_E2E_TESTS AND NOT OMPI_CR_E2E_TESTS)
  return()
endif()
if(NOT TARGET ompi-checkpoint OR NOT TARGET dirty_app OR NOT TARGET layout_app OR NOT TARGET stateful_app)
  return()
endif()
find_program(OCR_BASH bash REQUIRED)

# ocr_inc_test(NAME SCRIPT PROGRAM [TIMEOUT s] [LABELS l...] [ARGS a...])
function(ocr_inc_test name script program)
  cmake_parse_arguments(E "" "TIMEOUT" "LABELS;ARGS" ${ARGN})
  if(NOT E_TIMEOUT)
    set(E_TIMEOUT 300)
  endif()
  add_test(NAME e2e_incremental_${name}
           COMMAND ${OCR_BASH} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${script}
                   $<TARGET_FILE_DIR:ompi-checkpoint> $<TARGET_FILE:${program}> ${E_ARGS})
  set_tests_properties(e2e_incremental_${name} PROPERTIES
    LABELS "e2e;incremental;${E_LABELS}"
    TIMEOUT ${E_TIMEOUT}
    RESOURCE_LOCK ompi_cr_e2e
    SKIP_RETURN_CODE 77
    ENVIRONMENT "OCR_WAIT_LIMIT=240;OCR_TOOL_TIMEOUT=240")
endfunction()

# Incremental payload vs. the fraction of pages written (1%, 10%, 50% of 256 MiB), then
# the chain of 4 restores to the uninterrupted run's digests. Default backend (uffd-wp
# here), forced uffd, forced page hashes.
ocr_inc_test(fraction incremental_fraction.sh dirty_app TIMEOUT 600)
ocr_inc_test(fraction_uffd incremental_fraction.sh dirty_app TIMEOUT 600 ARGS --backend uffd)
ocr_inc_test(fraction_hash incremental_fraction.sh dirty_app TIMEOUT 600 ARGS --backend hash)
# The same area in transparent huge pages (MADV_HUGEPAGE; SKIPs when THP is off).
ocr_inc_test(fraction_thp incremental_fraction.sh dirty_app TIMEOUT 600 ARGS --thp)

# Chains: full + 4 incrementals, restore the 5th and (separately) the 3rd.
ocr_inc_test(chain5 incremental_chain.sh stateful_app TIMEOUT 600
             ARGS --points "4 10 16 22 28" --older 3 -- --steps 40 --heap-mb 64 --step-ms 40 --exit-code 8)
ocr_inc_test(chain5_threads incremental_chain.sh stateful_app TIMEOUT 600
             ARGS --points "3 8 13 18 23" --older 2 -- --steps 30 --heap-mb 32 --step-ms 40 --threads 2 --exit-code 13)
# Chains of 3 under each working backend, forced.
ocr_inc_test(chain3_uffd incremental_chain.sh stateful_app TIMEOUT 600
             ARGS --backend uffd --points "5 15 25" --older 2 -- --steps 32 --heap-mb 64 --step-ms 40 --exit-code 14)
ocr_inc_test(chain3_hash incremental_chain.sh stateful_app TIMEOUT 600
             ARGS --backend hash --points "5 15 25" --older 2 -- --steps 32 --heap-mb 64 --step-ms 40 --exit-code 15)

# Layout changes between images (mmap, munmap, mremap move/grow, brk grow/shrink,
# MAP_FIXED replacement, MADV_DONTNEED, mprotect splits, private file mappings).
ocr_inc_test(layout_uffd incremental_layout.sh layout_app TIMEOUT 300 ARGS --backend uffd)
ocr_inc_test(layout_hash incremental_layout.sh layout_app TIMEOUT 300 ARGS --backend hash)

# Compaction: restores identically, needs no parent, can be a parent itself.
ocr_inc_test(compact incremental_compact.sh stateful_app TIMEOUT 600)

# A restored process continues the chain (parents in other directories).
ocr_inc_test(restart incremental_restart.sh dirty_app TIMEOUT 600)
ocr_inc_test(restart_hash incremental_restart.sh dirty_app TIMEOUT 600 ARGS --backend hash)

# Missing or corrupt parents: one test per case.
foreach(case missing_parent missing_grandparent flip_parent_pages flip_parent_header
             flip_parent_records truncated_parent garbage_parent replaced_parent
             older_link_as_parent checkpoint_parent_gone)
  ocr_inc_test(bad_${case} incremental_bad_parent.sh dirty_app LABELS bad-input ARGS ${case})
endforeach()

# Backends that cannot track: a clear error, full images unaffected.
foreach(backend softdirty none bogus)
  ocr_inc_test(unavailable_${backend} incremental_unavailable.sh stateful_app ARGS ${backend})
endforeach()
