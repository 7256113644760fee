# plan_memory_bench: resident memory of the process over many static plans (the
# daemon plans in-process on every run, so a plan must not leak).
add_executable(plan_memory_bench ${CMAKE_CURRENT_LIST_DIR}/plan_memory_bench.cc)
target_link_libraries(plan_memory_bench PRIVATE runner_plan runner_os)
