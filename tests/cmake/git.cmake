switchyard_test(tests_git SOURCES runner/git/repository_test.cc LIBS runner_git)
