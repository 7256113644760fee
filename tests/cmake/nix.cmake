switchyard_test(tests_nix
  SOURCES runner/nix/flake_lock_test.cc runner/nix/parser_test.cc runner/nix/untrusted_inputs_test.cc
          runner/nix/parser_oracle_test.cc
  LIBS runner_nix)
