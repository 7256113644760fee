# first_status_bench: time from a push webhook's 202 to the first status request at a local
# fake Gitea (issue 13: workers that wake when told). Uses the tests' fake forge.
if(SWITCHYARD_TESTS)
  add_executable(first_status_bench ${CMAKE_CURRENT_LIST_DIR}/first_status_bench.cc)
  target_link_libraries(first_status_bench PRIVATE runner_app runner_http test_fake_forge)
endif()
