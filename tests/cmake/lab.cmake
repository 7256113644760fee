switchyard_test(tests_lab SOURCES runner/app/lab_test.cc LIBS runner_lab)
