# Driven by ctest: builds mpp + the consumer in WORK for MODE (find_package | add_subdirectory),
# then runs the consumer. Any failing step fails the test.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}")
  endif()
endfunction()
file(REMOVE_RECURSE ${WORK})
set(gen -G Ninja -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release)
if(MODE STREQUAL "find_package")
  # Install the library this build tree already built (no second compile of mpp), then build the
  # consumer against that install tree only.
  run(${CMAKE_COMMAND} --install ${BUILD} --prefix ${WORK}/install)
  run(${CMAKE_COMMAND} -S ${MPP_SOURCE}/tests/consumer -B ${WORK}/consumer ${gen}
      -DCMAKE_PREFIX_PATH=${WORK}/install)
else()
  run(${CMAKE_COMMAND} -S ${MPP_SOURCE}/tests/consumer -B ${WORK}/consumer ${gen}
      -DMPP_CONSUMER_MODE=add_subdirectory -DMPP_SOURCE=${MPP_SOURCE} -DMPP_WITH_MPI=OFF)
endif()
run(${CMAKE_COMMAND} --build ${WORK}/consumer)
run(${WORK}/consumer/consumer)
