# Run at build time (cmake -P): writes build_info.cpp with the current git commit, so provenance
# names the commit that was built, not the one that was configured. configure_file rewrites the
# file only when the text changes, so an unchanged commit recompiles nothing.
execute_process(COMMAND git describe --always --dirty --abbrev=12 --exclude=*
                WORKING_DIRECTORY ${SOURCE_DIR} OUTPUT_VARIABLE NMECH_GIT_COMMIT
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT NMECH_GIT_COMMIT)
  set(NMECH_GIT_COMMIT "unknown")
endif()
configure_file(${SOURCE_DIR}/cmake/build_info.cpp.in ${OUTPUT} @ONLY)
