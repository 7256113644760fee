# deploy_bench: deploy fan-out to N sshd test hosts (max_parallel N vs 1) and the runner's own
# overhead (wall time minus time inside nix/ssh operations).
add_executable(deploy_bench ${CMAKE_CURRENT_LIST_DIR}/deploy_bench.cc)
target_link_libraries(deploy_bench PRIVATE runner_deploy runner_lab runner_os)
