switchyard_test(tests_build
  SOURCES runner/build/build_monitor_test.cc runner/build/builder_test.cc
  LIBS runner_build runner_lab)
