# plan_bench: exact/auto planning, evaluation parallelism and build shapes on lab flakes.
add_executable(plan_bench ${CMAKE_CURRENT_LIST_DIR}/plan_bench.cc)
target_link_libraries(plan_bench PRIVATE runner_plan runner_git runner_nix runner_lab)
