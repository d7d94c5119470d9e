# km_enclave_driver: the enclave test driver (plays the gateway and the
# participants over in-process enclaves or transport pools) and the process
# harness for keymeld-enclave. Included by tests/integration and by
# bench/enclave (which builds without the tests).
if(NOT TARGET km_enclave_driver)
  add_library(km_enclave_driver STATIC ${CMAKE_CURRENT_LIST_DIR}/driver.c
                                       ${CMAKE_CURRENT_LIST_DIR}/procs.c
                                       ${CMAKE_CURRENT_LIST_DIR}/../support/process_spawn.c)
  target_include_directories(km_enclave_driver PUBLIC ${CMAKE_CURRENT_LIST_DIR}
                                                    ${CMAKE_CURRENT_LIST_DIR}/../support)
  target_link_libraries(km_enclave_driver PUBLIC km_client km_enclave km_transport)
  target_compile_definitions(km_enclave_driver PRIVATE
    KM_ENCLAVE_BIN="$<TARGET_FILE:keymeld-enclave>")
  add_dependencies(km_enclave_driver keymeld-enclave)
endif()
