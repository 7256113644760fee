# RUN_SERIAL: the remote-builder cases stop a test host that serves as a Nix builder, and a
# build of another test running at that moment was seen killed (signal 9) under `ctest -j2`
# only (not reproduced with the two binaries started by hand). Until the cause is found
# (issue note), these two binaries run alone.
switchyard_test(tests_build
  SOURCES runner/build/build_monitor_test.cc runner/build/builder_test.cc
          runner/build/remote_builders_test.cc
  LIBS runner_build runner_lab
  PROPERTIES RUN_SERIAL TRUE)
switchyard_test(tests_build_cli SOURCES runner/app/build_cli_test.cc LIBS runner_lab
  PROPERTIES RUN_SERIAL TRUE)
