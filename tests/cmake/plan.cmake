switchyard_test(tests_plan SOURCES runner/plan/static_planner_test.cc runner/plan/builtins_test.cc
  runner/plan/eval_limits_test.cc LIBS runner_plan)
