switchyard_test(tests_os SOURCES runner/os/process_test.cc LIBS runner_os)
