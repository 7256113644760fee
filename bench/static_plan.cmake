# static_plan_bench: static planning speed on generated repositories (200 hosts, 2,000 modules).
add_executable(static_plan_bench ${CMAKE_CURRENT_LIST_DIR}/static_plan_bench.cc)
target_link_libraries(static_plan_bench PRIVATE runner_plan runner_os)
