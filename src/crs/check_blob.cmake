# Checks that the restorer blob is position independent as a flat binary: only .text and
# .rodata, no writable data (which could hold absolute pointers), no relocations, no
# undefined symbols; then extracts the flat binary.
execute_process(COMMAND ${READELF} -SW ${ELF} OUTPUT_VARIABLE sections RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "readelf failed on ${ELF}")
endif()
# Section lines look like "  [ 1] .text  PROGBITS ..."; brackets would confuse CMake lists.
string(REGEX MATCHALL "[.][A-Za-z0-9_.]+ +[A-Z_]+ " found "${sections}")
foreach(s ${found})
  string(REGEX REPLACE " .*" "" name "${s}")
  if(NOT name MATCHES "^[.](text|rodata|symtab|strtab|shstrtab)$")
    message(FATAL_ERROR "restorer blob has section ${name}: the blob must not have writable "
                        "data or relocations (see src/crs/restorer_blob.c)")
  endif()
endforeach()
execute_process(COMMAND ${READELF} -rW ${ELF} OUTPUT_VARIABLE relocs)
if(NOT relocs MATCHES "no relocations")
  message(FATAL_ERROR "restorer blob has relocations:\n${relocs}")
endif()
execute_process(COMMAND ${OBJCOPY} -O binary ${ELF} ${BIN} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "objcopy failed")
endif()
