switchyard_test(tests_store SOURCES runner/store/store_test.cc LIBS runner_store runner_os)
