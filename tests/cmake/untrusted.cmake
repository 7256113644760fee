# Untrusted evaluation (README "Untrusted evaluation"): pull requests from forks attack the runner through the real
# daemon, the jail (switchyard-untrusted, created by scripts/install-deps.sh) and a nix-daemon
# this fixture starts for them.
add_test(NAME nix_daemon_start COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/support/nix_daemon_fixture.sh start)
add_test(NAME nix_daemon_stop COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/support/nix_daemon_fixture.sh stop)
set_tests_properties(nix_daemon_start PROPERTIES FIXTURES_SETUP nix_daemon LABELS integration)
set_tests_properties(nix_daemon_stop PROPERTIES FIXTURES_CLEANUP nix_daemon LABELS integration)
switchyard_test(tests_untrusted
  SOURCES runner/app/untrusted_fork_test.cc
  LIBS runner_app runner_lab test_fake_forge runner_http runner_store runner_os
  PROPERTIES FIXTURES_REQUIRED nix_daemon)
