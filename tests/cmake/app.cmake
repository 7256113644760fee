switchyard_test(tests_app SOURCES runner/app/cli_test.cc runner/app/config_loader_test.cc runner/app/plan_cli_test.cc runner/app/demo_test.cc LIBS runner_app runner_lab)
