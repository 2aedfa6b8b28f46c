# End-to-end tests of multi-threaded checkpoint/restart (issue 3, "Threads"): the mt_*
# programs (tests/programs/mt.cmake) under checkpoint / kill -9 / restore, checkpoint and
# continue, restored generations and checkpoint storms. Included from tests/CMakeLists.txt
# (before or after tests/scripts/tests.cmake: the glob decides); they share its option
# OMPI_CR_E2E_TESTS and its RESOURCE_LOCK, and find the tools the same way.
#
#   ctest --test-dir build -L threads     only these
#
# Races are what matters here: run them many times, e.g.
#   for i in $(seq 20); do ctest --test-dir build -L threads --output-on-failure; done
option(OMPI_CR_E2E_TESTS "Register the end-to-end checkpoint/restart tests" ON)
if(NOT OMPI_CR_E2E_TESTS)
  return()
endif()
find_program(OCR_BASH bash REQUIRED)
if(TARGET ompi-checkpoint)
  set(OCR_MT_BIN_DIR $<TARGET_FILE_DIR:ompi-checkpoint>)
elseif(CMAKE_RUNTIME_OUTPUT_DIRECTORY)
  set(OCR_MT_BIN_DIR ${CMAKE_RUNTIME_OUTPUT_DIRECTORY})
else()
  set(OCR_MT_BIN_DIR ${CMAKE_BINARY_DIR}/bin)
endif()
set(OCR_MT_SCRIPTS ${CMAKE_CURRENT_LIST_DIR})

# ocr_mt_test(NAME SCRIPT PROGRAM [TIMEOUT s] [ENV v=x...] [ARGS a...])
function(ocr_mt_test name script program)
  cmake_parse_arguments(E "" "TIMEOUT" "ENV;ARGS" ${ARGN})
  if(NOT TARGET ${program})
    return()
  endif()
  if(NOT E_TIMEOUT)
    set(E_TIMEOUT 300)
  endif()
  add_test(NAME e2e_${name}
           COMMAND ${OCR_BASH} ${OCR_MT_SCRIPTS}/${script} ${OCR_MT_BIN_DIR} $<TARGET_FILE:${program}> ${E_ARGS})
  set_tests_properties(e2e_${name} PROPERTIES
    LABELS "e2e;threads"
    TIMEOUT ${E_TIMEOUT}
    RESOURCE_LOCK ompi_cr_e2e
    ENVIRONMENT "OCR_WAIT_LIMIT=240;OCR_TOOL_TIMEOUT=240;${E_ENV}")
endfunction()

# --- mt_workers: queue with mutex + condvars, TLS, handles, joins of ended threads
ocr_mt_test(mt_workers_equiv mt_equiv.sh mt_workers TIMEOUT 600
            ARGS --points "2 12 25" --jitter-ms 80 -- --steps 30 --threads 4 --step-ms 40 --exit-code 11)
ocr_mt_test(mt_workers_continue continue.sh mt_workers TIMEOUT 600
            ARGS 6 20 --steps 30 --threads 4 --step-ms 40 --exit-code 12)
ocr_mt_test(mt_workers_generations generations.sh mt_workers TIMEOUT 600
            ARGS 4 12 22 --steps 30 --threads 4 --step-ms 40 --exit-code 13)
ocr_mt_test(mt_workers_term term.sh mt_workers TIMEOUT 600
            ARGS 10 --steps 30 --threads 4 --step-ms 40 --exit-code 24)
# restored while the original still runs (its pid and thread ids are taken)
ocr_mt_test(mt_workers_while_running mt_restore_while_running.sh mt_workers TIMEOUT 600
            ARGS 8 --steps 20 --threads 4 --step-ms 40 --exit-code 25)

# --- mt_churn: threads starting and ending all the time
ocr_mt_test(mt_churn_equiv mt_equiv.sh mt_churn TIMEOUT 600
            ARGS --points "2 15 30" --jitter-ms 40 -- --steps 36 --step-ms 20 --exit-code 14)
ocr_mt_test(mt_churn_storm mt_ckpt_storm.sh mt_churn TIMEOUT 600
            ARGS --count 12 --from 2 --jitter-ms 30 -- --steps 400 --step-ms 20 --exit-code 15)
ocr_mt_test(mt_churn_term term.sh mt_churn TIMEOUT 600
            ARGS 12 --steps 30 --step-ms 20 --exit-code 26)

# --- mt_omp: libgomp pool of OMP_NUM_THREADS=3
ocr_mt_test(mt_omp_equiv mt_equiv.sh mt_omp TIMEOUT 600 ENV OMP_NUM_THREADS=3
            ARGS --points "2 12 25" --jitter-ms 60 -- --steps 30 --step-ms 40 --exit-code 16)
ocr_mt_test(mt_omp_continue continue.sh mt_omp TIMEOUT 600 ENV OMP_NUM_THREADS=3
            ARGS 5 18 --steps 30 --step-ms 40 --exit-code 17)

# --- mt_blocked: threads blocked in the kernel at the checkpoint
ocr_mt_test(mt_blocked_equiv mt_equiv.sh mt_blocked TIMEOUT 600
            ARGS --points "1 7 14" --jitter-ms 60 -- --steps 18 --step-ms 150 --exit-code 18)
# ... with a write-held rwlock and recursive / error-checking / robust / PI mutexes held
# across the checkpoint (glibc keeps the owner's tid in them)
ocr_mt_test(mt_blocked_tid_locks mt_equiv.sh mt_blocked TIMEOUT 600
            ARGS --points "3" -- --steps 8 --step-ms 150 --tid-locks 1 --exit-code 19)
# Not registered: the same restored while the original still runs. Its PID and thread
# ids are taken then, and locks a thread held at the checkpoint carry its old id inside
# glibc's lock words (mutex __owner, rwlock __cur_writer), which no restore can find and
# rewrite in general. README "Limits" documents it; mt_workers_while_running covers the
# rest of that case.
#   ocr_mt_test(mt_blocked_tid_locks_while_running mt_restore_while_running.sh mt_blocked
#               TIMEOUT 600 ARGS 3 --steps 8 --step-ms 150 --tid-locks 1 --exit-code 27)
# ... with a thread inside dl_iterate_phdr (glibc's recursive loader lock held)
ocr_mt_test(mt_blocked_dl_lock mt_equiv.sh mt_blocked TIMEOUT 600
            ARGS --points "3" -- --steps 8 --step-ms 150 --dl-lock 1 --exit-code 20)
# ... with a thread blocked in read() on a pipe another thread writes later
ocr_mt_test(mt_blocked_pipe mt_equiv.sh mt_blocked TIMEOUT 600
            ARGS --points "3" -- --steps 8 --step-ms 150 --pipe 1 --exit-code 21)

# --- mt_many: 64 threads
ocr_mt_test(mt_many_equiv mt_equiv.sh mt_many TIMEOUT 600
            ARGS --points "2 15" --jitter-ms 60 -- --steps 24 --threads 64 --step-ms 40 --exit-code 22)

# --- mt_identity: cached tids, thread names, affinity, nice, tgkill to a cached tid
ocr_mt_test(mt_identity_equiv mt_equiv.sh mt_identity TIMEOUT 600
            ARGS --points "3" -- --steps 8 --step-ms 100 --exit-code 23)
