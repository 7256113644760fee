switchyard_test(tests_ssh
  SOURCES runner/ssh/known_hosts_test.cc runner/ssh/libssh_test.cc
  LIBS runner_ssh runner_lab runner_os)
