# The generated C MPI wrappers (included from src/crcp/CMakeLists.txt).
#
# gen_wrappers.py reads spec/apis.json and spec/wrap_spec.txt and the export list of the
# installed libmpi, and writes into ${CMAKE_CURRENT_BINARY_DIR}/generated/:
#   crcp_wrappers.c crcp_unwrapped.c   compiled here into the OBJECT library
#                                      ocr_crcp_wrappers (MPI_X symbols, default visibility)
#   crcp/crcp_custom.h                 for the core (#include "crcp/crcp_custom.h"):
#   crcp/crcp_fn_ids.h                 prototypes of ocr_crcp_MPI_X (custom category) and
#                                      the OCR_FN_MPI_X ids
#   crcp/crcp_proxy.h                  prototypes of ocr_proxy_MPI_X (proxy mode; weak
#                                      defaults in crcp_wrappers.c, the core overrides)
# A target compiling against the generated headers must depend on ocr_crcp_generated (or
# link ocr_crcp_wrappers, which carries the include path). See docs/wrappers.md.
find_package(MPI COMPONENTS C REQUIRED)
find_package(Python3 COMPONENTS Interpreter REQUIRED)

# The shared libmpi whose exported MPI_/MPIX_ symbols the wrappers must cover.
set(OCR_LIBMPI "")
foreach(lib IN LISTS MPI_C_LIBRARIES)
  if(lib MATCHES "/libmpi\\.so")
    set(OCR_LIBMPI ${lib})
    break()
  endif()
endforeach()
if(NOT OCR_LIBMPI)
  message(FATAL_ERROR "wrappers.cmake: no libmpi.so among MPI_C_LIBRARIES (${MPI_C_LIBRARIES})")
endif()
if(NOT CMAKE_NM)
  message(FATAL_ERROR "wrappers.cmake: CMAKE_NM is not set (nm reads libmpi's exports)")
endif()

set(OCR_CRCP_GEN_DIR ${CMAKE_CURRENT_BINARY_DIR}/generated)
set(OCR_CRCP_GEN_OUTPUTS
    ${OCR_CRCP_GEN_DIR}/crcp_wrappers.c ${OCR_CRCP_GEN_DIR}/crcp_unwrapped.c
    ${OCR_CRCP_GEN_DIR}/crcp/crcp_custom.h ${OCR_CRCP_GEN_DIR}/crcp/crcp_fn_ids.h
    ${OCR_CRCP_GEN_DIR}/crcp/crcp_proxy.h)
add_custom_command(
  OUTPUT ${OCR_CRCP_GEN_OUTPUTS}
  COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/gen_wrappers.py
          --apis ${CMAKE_CURRENT_SOURCE_DIR}/spec/apis.json
          --spec ${CMAKE_CURRENT_SOURCE_DIR}/spec/wrap_spec.txt
          --libmpi ${OCR_LIBMPI} --nm ${CMAKE_NM}
          --outdir ${OCR_CRCP_GEN_DIR}
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/gen_wrappers.py
          ${CMAKE_CURRENT_SOURCE_DIR}/spec/apis.json
          ${CMAKE_CURRENT_SOURCE_DIR}/spec/wrap_spec.txt
          ${OCR_LIBMPI}
  COMMENT "Generating the MPI wrappers (gen_wrappers.py)"
  VERBATIM)
# One target drives the command; everything that uses its outputs depends on it (so the
# rule never runs twice in parallel).
add_custom_target(ocr_crcp_generated DEPENDS ${OCR_CRCP_GEN_OUTPUTS})

add_library(ocr_crcp_wrappers OBJECT
  ${OCR_CRCP_GEN_DIR}/crcp_wrappers.c
  ${OCR_CRCP_GEN_DIR}/crcp_unwrapped.c)
add_dependencies(ocr_crcp_wrappers ocr_crcp_generated)
# "crcp/crcp_custom.h" from the generated dir, "crcp/crcp_hooks.h" from src/, and the plain
# names from src/crcp.
target_include_directories(ocr_crcp_wrappers PUBLIC
  ${OCR_CRCP_GEN_DIR} ${PROJECT_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(ocr_crcp_wrappers PUBLIC MPI::MPI_C)
# C++ includers of mpi.h (the core) want the C API only.
target_compile_definitions(ocr_crcp_wrappers PUBLIC OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
# The MPI_X definitions must be exported from the shared library they end up in.
set_target_properties(ocr_crcp_wrappers PROPERTIES C_VISIBILITY_PRESET default)
target_compile_options(ocr_crcp_wrappers PRIVATE -fvisibility=default -fno-semantic-interposition)
# For tests/scripts/crcp_wrappers.cmake.
list(TRANSFORM MPI_C_INCLUDE_DIRS PREPEND "-I" OUTPUT_VARIABLE OCR_MPI_INCLUDE_FLAGS)
set_target_properties(ocr_crcp_wrappers PROPERTIES
  OCR_LIBMPI ${OCR_LIBMPI}
  OCR_GENERATED_DIR ${OCR_CRCP_GEN_DIR}
  OCR_MPI_INCLUDE_FLAGS "${OCR_MPI_INCLUDE_FLAGS}")
