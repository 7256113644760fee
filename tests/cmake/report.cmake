# runner/report (forge statuses, check runs, the PR comment, the outbox sender, re-runs) and
# the outbox/forge_objects repositories of runner/store, against FakeGitea/FakeGitHub.
switchyard_test(tests_report
  SOURCES runner/store/outbox_test.cc
          runner/report/markdown_test.cc
          runner/report/closure_diff_test.cc
          runner/report/mapping_test.cc
          runner/report/reporter_test.cc
          runner/report/sender_test.cc
          runner/report/gateway_test.cc
          runner/report/reporter_unit_test.cc
          runner/report/comment_test.cc
          runner/report/closure_diff_nix_test.cc
  LIBS runner_report runner_store runner_nix runner_http integrations_gitea integrations_github
       runner_crypto runner_os test_fake_forge test_postgres)
