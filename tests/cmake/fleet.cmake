# The fleet (issue 14): drift rules, the probe (fake connector and real sshd test hosts), the
# fleet table over a real SQLite store.
switchyard_test(tests_fleet
  SOURCES runner/fleet/fleet_test.cc
  LIBS runner_fleet runner_lab runner_store runner_ssh runner_os)
# The console from the user's side: fleet/host pages, /api/fleet, `switchyard fleet`, /metrics.
# console_actions_test: roll back and re-run against sshd test hosts with real Nix.
switchyard_test(tests_console
  SOURCES runner/app/console_test.cc runner/app/console_actions_test.cc
  LIBS runner_app runner_lab runner_store runner_http runner_os)
# The console in a real Chromium (tests/browser/run.sh: installs chromium and puppeteer-core,
# runs the demo, writes screenshots to <build>/browser-screenshots/); skipped without them.
add_test(NAME browser_console
  COMMAND ${PROJECT_SOURCE_DIR}/tests/browser/run.sh $<TARGET_FILE:switchyard> ${PROJECT_BINARY_DIR})
set_tests_properties(browser_console PROPERTIES LABELS integration TIMEOUT 300
  SKIP_REGULAR_EXPRESSION "SKIPPED:")
# retry_unreachable (issue 18): the daemon's probe re-runs a pending deploy when a host that was
# off answers again (real stages, lab flake, sshd test hosts).
switchyard_test(tests_fleet_retry
  SOURCES runner/fleet/retry_test.cc
  LIBS runner_app runner_lab runner_fleet runner_store runner_http runner_os)
