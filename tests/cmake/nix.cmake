switchyard_test(tests_nix SOURCES runner/nix/flake_lock_test.cc LIBS runner_nix)
