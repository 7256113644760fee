switchyard_test(tests_core SOURCES runner/core/text_test.cc runner/core/plan_test.cc runner/core/config_test.cc runner/core/event_test.cc runner/core/layout_test.cc LIBS runner_core)
