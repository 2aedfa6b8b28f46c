# Programs run by the end-to-end tests (tests/scripts). Included from tests/CMakeLists.txt.
#
# stateful_app: a plain C, dynamically linked glibc program with state everywhere and a
# running digest (see the comment at the top of stateful_app.c). It lands in the bin
# directory next to the tools (CMAKE_RUNTIME_OUTPUT_DIRECTORY). Its optimisation flags
# are fixed here so that its output is the same in every build type: -O3 so the work
# loops are vectorised (the file also carries AVX2 / AVX-512 clones of its kernel),
# -ffp-contract=off so no build ever fuses multiply-adds.
find_package(Threads REQUIRED)

add_executable(stateful_app ${CMAKE_CURRENT_LIST_DIR}/stateful_app.c)
set_target_properties(stateful_app PROPERTIES C_STANDARD 11 C_EXTENSIONS ON)
target_compile_options(stateful_app PRIVATE -O3 -g -ffp-contract=off -fno-fast-math -fno-strict-aliasing)
target_link_libraries(stateful_app PRIVATE Threads::Threads)
