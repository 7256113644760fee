switchyard_test(tests_os SOURCES runner/os/process_test.cc runner/os/files_test.cc LIBS runner_os)
