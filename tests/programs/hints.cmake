# hints_app: the subject of tests/scripts/hints.sh (see the comment at the top of
# hints_app.c). Plain C against the public header, linked with libompi-cr.so like an
# application that uses the hints API directly (ompi-cr-run preloads the same library, so
# it is loaded once).
find_package(Threads REQUIRED)

add_executable(hints_app ${CMAKE_CURRENT_LIST_DIR}/hints_app.c)
set_target_properties(hints_app PROPERTIES C_STANDARD 11 C_EXTENSIONS ON)
target_include_directories(hints_app PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_compile_options(hints_app PRIVATE -O2 -g)
target_link_libraries(hints_app PRIVATE ompi-cr Threads::Threads ${CMAKE_DL_LIBS})
