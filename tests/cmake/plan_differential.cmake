# The lab-flake generator (real nixpkgs lib and flake-parts from SWITCHYARD_NIX_LIBS) and the
# differential test of static against exact planning. Cases print "SKIPPED: ..." and CTest
# reports them skipped (tests/CMakeLists.txt) when SWITCHYARD_NIX_LIBS is not set.
add_library(test_lab_flake_gen STATIC support/lab_flake_gen.cc)
target_include_directories(test_lab_flake_gen PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(test_lab_flake_gen PUBLIC runner_lab runner_os runner_core)
switchyard_test(tests_plan_differential SOURCES runner/plan/differential_test.cc
  LIBS runner_plan test_lab_flake_gen)
