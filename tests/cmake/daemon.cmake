# The daemon: HTTP intake through the real server, the delivery queue and runs
# stores, the scheduler's rules and restart recovery (fake stages, real SQLite and git), the
# crash test (SIGKILL of the built binary) and the hook-driven end-to-end run with real Nix.
switchyard_test(tests_daemon
  SOURCES runner/http/intake_http_test.cc runner/scheduler/scheduler_test.cc
          runner/store/daemon_store_test.cc runner/scheduler/several_runners_test.cc
          runner/app/daemon_crash_test.cc runner/app/daemon_e2e_test.cc runner/app/web_test.cc
          runner/app/daemon_recovery_test.cc runner/app/daemon_forge_test.cc
  LIBS runner_app runner_lab runner_report test_fake_forge runner_http runner_scheduler runner_store runner_crypto runner_os
       test_postgres)
