# A throwaway PostgreSQL server for the store's tests on both engines (issue 16).
add_library(test_postgres STATIC ${CMAKE_CURRENT_LIST_DIR}/../support/postgres_server.cc)
target_link_libraries(test_postgres PUBLIC test_support runner_os)

switchyard_test(tests_store SOURCES runner/store/store_test.cc runner/store/runner_leases_test.cc
  LIBS runner_store runner_os test_postgres)
