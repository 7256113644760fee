# Issue 18 on the seed's own flake shape (tests/support/seed_flake.h: the real flake-parts and
# nixpkgs lib from $SWITCHYARD_NIX_LIBS, a Colmena hive and a Clan machine): the deploy facts
# discovery reads from it, and a push to the daemon deploying it to five sshd test hosts.
switchyard_test(tests_seed_lab
  SOURCES runner/deploy/flake_facts_test.cc runner/fleet/seed_fleet_test.cc
          support/seed_flake.cc support/lab_flake_gen.cc
  LIBS runner_app runner_lab runner_build runner_deploy runner_fleet runner_store runner_http
       runner_os)
