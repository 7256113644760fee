switchyard_test(tests_deploy
  SOURCES runner/deploy/remote_agent_test.cc runner/deploy/rollout_test.cc
  LIBS runner_deploy runner_os)
