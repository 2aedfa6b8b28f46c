# Tests of the generated MPI wrappers (src/crcp/wrappers.cmake, gen_wrappers.py): checks on
# the built objects and generated headers, and the generator's refusals of bad specs.
# Script: crcp_wrappers.py beside this file. Label "crcp_wrappers" (ctest -L crcp_wrappers runs just these).
if(NOT TARGET ocr_crcp_wrappers)
  return()
endif()
find_package(Python3 COMPONENTS Interpreter REQUIRED)
find_program(OCR_READELF readelf REQUIRED)

set(_ocr_w $<TARGET_PROPERTY:ocr_crcp_wrappers,OCR_LIBMPI>)
set(_ocr_gen $<TARGET_PROPERTY:ocr_crcp_wrappers,OCR_GENERATED_DIR>)
set(_ocr_mpi_inc "$<TARGET_PROPERTY:ocr_crcp_wrappers,OCR_MPI_INCLUDE_FLAGS>")
set(_ocr_script ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/crcp_wrappers.py)
set(_ocr_common --libmpi ${_ocr_w} --nm ${CMAKE_NM} --readelf ${OCR_READELF}
    --gendir ${_ocr_gen} --srcdir ${PROJECT_SOURCE_DIR}/src/crcp
    --generator ${PROJECT_SOURCE_DIR}/src/crcp/gen_wrappers.py
    --apis ${PROJECT_SOURCE_DIR}/src/crcp/spec/apis.json
    --spec ${PROJECT_SOURCE_DIR}/src/crcp/spec/wrap_spec.txt)

# Every MPI_/MPIX_ function libmpi exports is defined (global, default visibility) by the
# objects of ocr_crcp_wrappers, once; no PMPI_ name is.
add_test(NAME crcp_wrappers_exports
         COMMAND ${_ocr_script} exports ${_ocr_common}
                 "--objects=$<TARGET_OBJECTS:ocr_crcp_wrappers>")
# The objects plus test doubles of the hooks and custom functions link with -z defs into a
# shared library exporting all of them.
add_test(NAME crcp_wrappers_link
         COMMAND ${_ocr_script} link ${_ocr_common} --cc ${CMAKE_C_COMPILER}
                 "--objects=$<TARGET_OBJECTS:ocr_crcp_wrappers>"
                 "--mpi-compile=${_ocr_mpi_inc}")
# Every custom function of wrap_spec.txt has its prototype in crcp_custom.h.
add_test(NAME crcp_wrappers_custom_protos COMMAND ${_ocr_script} custom_protos ${_ocr_common})
# The generator refuses MPI_Isend (a REQUEST parameter) in category local.
add_test(NAME crcp_wrappers_request_rule COMMAND ${_ocr_script} request_rule ${_ocr_common})
# The generator refuses an unknown function name.
add_test(NAME crcp_wrappers_unknown_name COMMAND ${_ocr_script} unknown_name ${_ocr_common})
# Proxy mode: crcp_proxy.h declares exactly the functions of the rule (docs/wrappers.md,
# "Proxy mode"), each defined WEAK by the objects and dispatched to by its wrapper.
add_test(NAME crcp_wrappers_proxy_set
         COMMAND ${_ocr_script} proxy_set ${_ocr_common}
                 "--objects=$<TARGET_OBJECTS:ocr_crcp_wrappers>")
# Proxy mode at run time (no MPI_Init): a strong ocr_proxy_MPI_Barrier in another object
# overrides the weak default; other proxied calls reach ocr_crcp_unsupported_in_proxy.
add_test(NAME crcp_wrappers_proxy_dispatch
         COMMAND ${_ocr_script} proxy_dispatch ${_ocr_common} --cc ${CMAKE_C_COMPILER}
                 "--objects=$<TARGET_OBJECTS:ocr_crcp_wrappers>"
                 "--mpi-compile=${_ocr_mpi_inc}")
set_tests_properties(crcp_wrappers_exports crcp_wrappers_link crcp_wrappers_custom_protos
                     crcp_wrappers_request_rule crcp_wrappers_unknown_name
                     crcp_wrappers_proxy_set crcp_wrappers_proxy_dispatch
                     PROPERTIES LABELS "crcp_wrappers" TIMEOUT 120)
