switchyard_test(tests_plan_exact SOURCES runner/plan/exact_planner_test.cc runner/plan/plan_stage_test.cc
  LIBS runner_plan runner_lab runner_store)
