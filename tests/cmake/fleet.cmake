# The fleet (issue 14): drift rules, the probe (fake connector and real sshd test hosts), the
# fleet table over a real SQLite store.
switchyard_test(tests_fleet
  SOURCES runner/fleet/fleet_test.cc
  LIBS runner_fleet runner_lab runner_store runner_ssh runner_os)
