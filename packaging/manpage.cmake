# cmake -DBIN=<switchyard> -DOUT=<dir> -P manpage.cmake: writes OUT/switchyard.1.gz from
# `switchyard manpage` (the CLI's own help).
execute_process(COMMAND ${BIN} manpage OUTPUT_FILE ${OUT}/switchyard.1 RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "switchyard manpage failed: ${rc}")
endif()
execute_process(COMMAND gzip -9nf ${OUT}/switchyard.1 RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip failed: ${rc}")
endif()
