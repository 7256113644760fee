switchyard_test(tests_deploy
  SOURCES runner/deploy/remote_agent_test.cc runner/deploy/rollout_test.cc
          runner/deploy/deploy_test.cc runner/deploy/deploy_cli_test.cc runner/deploy/fleet_cli_test.cc
          runner/deploy/build_on_target_test.cc runner/deploy/deploy_targets_test.cc
          runner/deploy/host_facts_test.cc
          support/deploy_fixture.cc
  LIBS runner_deploy runner_lab runner_os)
