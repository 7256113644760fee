# The scheduler's rules as a table (decide(), runner/scheduler/rules.h): no database, no git.
switchyard_test(tests_scheduler SOURCES runner/scheduler/rules_test.cc LIBS runner_scheduler)
