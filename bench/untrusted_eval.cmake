# untrusted_eval_bench: evaluation of a lab flake trusted vs in the fork jail.
add_executable(untrusted_eval_bench ${CMAKE_CURRENT_LIST_DIR}/untrusted_eval_bench.cc)
target_link_libraries(untrusted_eval_bench PRIVATE runner_app runner_lab runner_scheduler)
