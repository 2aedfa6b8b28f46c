# Benchmark programs (included from bench/CMakeLists.txt).
#
# Every other bench/*.cmake fragment (colleagues' hints.cmake, dirty.cmake, ...) is
# included from here, so that bench/CMakeLists.txt needs only this one include.
file(GLOB _frags ${CMAKE_CURRENT_SOURCE_DIR}/*.cmake)
list(SORT _frags)
foreach(_frag ${_frags})
  get_filename_component(_name ${_frag} NAME)
  if(NOT _name STREQUAL "bench.cmake")
    include(${_frag})
  endif()
endforeach()

# heap_fill: the subject of ckpt_restore_bench.sh (see the comment in heap_fill.c). Plain
# C, no ompi-cr code: it is run under ompi-cr-run like any application. Fixed -O2 so its
# fill/verify speed does not depend on the build type.
add_executable(heap_fill ${CMAKE_CURRENT_LIST_DIR}/programs/heap_fill.c)
set_target_properties(heap_fill PROPERTIES C_STANDARD 11 C_EXTENSIONS ON)
target_compile_options(heap_fill PRIVATE -O2)
