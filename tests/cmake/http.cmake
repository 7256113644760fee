switchyard_test(tests_http SOURCES runner/http/curl_client_test.cc runner/http/server_test.cc
  LIBS runner_http PkgConfig::HTTPLIB)
