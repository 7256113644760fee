switchyard_test(tests_nix_cli
  SOURCES runner/nix/internal_json_test.cc runner/nix/derivation_test.cc runner/nix/nix_cli_test.cc
          runner/nix/process_limit_test.cc
  LIBS runner_nix runner_lab)
