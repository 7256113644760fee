# Packaging (issue 15): the NixOS module evaluated with the real nixpkgs lib (skipped visibly
# without SWITCHYARD_NIX_LIBS), the .nix files we ship parsed by Nix and by our parser, the
# GitHub Actions output of `plan` and the App manifest, and no capability leaks into children.
switchyard_test(tests_packaging
  SOURCES packaging/nix_module_test.cc packaging/ambient_caps_test.cc packaging/install_cli_test.cc
  LIBS runner_app nlohmann_json::nlohmann_json PkgConfig::YAMLCPP
  PROPERTIES SKIP_REGULAR_EXPRESSION "SKIPPED: SWITCHYARD_NIX_LIBS")
# The Debian package: cpack from this build tree, dpkg -i / -r / --purge on this machine (root;
# it removes everything it added). One at a time: it installs system-wide.
add_test(NAME packaging:deb COMMAND ${PROJECT_SOURCE_DIR}/tests/packaging/deb_test.sh ${PROJECT_BINARY_DIR})
set_tests_properties(packaging:deb PROPERTIES LABELS integration TIMEOUT 600
  RESOURCE_LOCK system_packages SKIP_REGULAR_EXPRESSION "^SKIPPED: the Debian|^SKIPPED: a switchyard")
# The lab the guides run against (tests/support/guide_lab.cc): the seed's machines as SSH test
# hosts, the sample flake, and a fake Gitea/GitHub with a git side that delivers webhooks.
add_executable(guide_lab support/guide_lab.cc)
target_link_libraries(guide_lab PRIVATE test_fake_forge runner_lab runner_os)
add_dependencies(guide_lab switchyard)
# The guides in docs/: every ```sh block run as written (with the built switchyard on PATH),
# against the lab a guide asks for (guide_lab). Build guide_lab before running it.
add_test(NAME packaging:guides
  COMMAND ${PROJECT_SOURCE_DIR}/tests/packaging/guides_test.sh ${PROJECT_SOURCE_DIR}
          $<TARGET_FILE:switchyard> $<TARGET_FILE:guide_lab>)
set_tests_properties(packaging:guides PROPERTIES LABELS integration TIMEOUT 300)
