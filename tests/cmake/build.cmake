switchyard_test(tests_build
  SOURCES runner/build/build_monitor_test.cc runner/build/builder_test.cc
          runner/build/remote_builders_test.cc
  LIBS runner_build runner_lab)
switchyard_test(tests_build_cli SOURCES runner/app/build_cli_test.cc LIBS runner_lab)
