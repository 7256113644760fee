switchyard_test(tests_app SOURCES runner/app/cli_test.cc LIBS runner_git)
