# Dirty-page tracking benchmark (bench/bench_dirty_tracking.cpp): a plain timed program
# that prints markdown tables for docs/benchmarks.md. Included from bench/CMakeLists.txt.
add_executable(bench_dirty_tracking ${CMAKE_CURRENT_LIST_DIR}/bench_dirty_tracking.cpp)
target_link_libraries(bench_dirty_tracking PRIVATE ocr_core)
