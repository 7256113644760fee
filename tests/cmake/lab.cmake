switchyard_test(tests_lab SOURCES runner/lab/lab_test.cc LIBS runner_lab)
