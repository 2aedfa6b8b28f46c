# Benchmark of the memory hints API (bench_hints.cpp): per-message receive-buffer
# registration, single- and multi-threaded, critical sections, checkpoint-time collection.
# Included from bench/CMakeLists.txt: include(${CMAKE_CURRENT_SOURCE_DIR}/hints.cmake OPTIONAL)
find_package(benchmark REQUIRED)
add_executable(bench_hints ${CMAKE_CURRENT_LIST_DIR}/bench_hints.cpp $<TARGET_OBJECTS:ocr_hints>)
target_link_libraries(bench_hints PRIVATE ocr_core benchmark::benchmark Threads::Threads)
