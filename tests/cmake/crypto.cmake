switchyard_test(tests_crypto SOURCES runner/crypto/crypto_test.cc LIBS runner_crypto runner_os)
