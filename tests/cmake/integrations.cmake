# The fake Gitea and GitHub servers (tests/support/fake_forge.h); reusable by any test that
# talks to a forge: link test_fake_forge.
add_library(test_fake_forge STATIC support/fake_forge.cc)
target_link_libraries(test_fake_forge
  PUBLIC test_support runner_core nlohmann_json::nlohmann_json Threads::Threads
  PRIVATE runner_crypto PkgConfig::HTTPLIB)

switchyard_test(tests_integrations
  SOURCES integrations/forge_port_test.cc
          integrations/gitea_webhook_test.cc
          integrations/github_webhook_test.cc
          integrations/github_app_test.cc
          integrations/gitea_client_test.cc
          integrations/github_client_test.cc
  LIBS integrations_gitea integrations_github runner_http runner_crypto runner_os test_fake_forge)

# Contract tests: the daemon's forge calls against GitHub's OpenAPI description and Gitea's
# Swagger served by Stoplight Prism (npm, installed by the test itself; skipped without npm).
switchyard_test(tests_contract
  SOURCES integrations/contract_test.cc
  LIBS runner_app runner_report test_fake_forge runner_http runner_scheduler runner_store runner_crypto runner_os)
