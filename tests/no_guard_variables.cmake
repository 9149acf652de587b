# Fails when a library of mpp has a function-local static with a guard variable (or calls
# std::call_once): a fork() in one thread while another is inside such an initialisation leaves
# the child waiting on the guard forever (issue 16 part 1; sys::register_atfork_once says why and
# what to use instead). Usage: cmake -DNM=nm -DLIBS="a;b" -P no_guard_variables.cmake
set(found "")
foreach(lib IN LISTS LIBS)
  execute_process(COMMAND ${NM} -C ${lib} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${lib}")
  endif()
  string(REGEX MATCHALL "guard variable for mpp::[^\n]*|std::call_once[^\n]*" hits "${out}")
  list(APPEND found ${hits})
endforeach()
list(REMOVE_DUPLICATES found)
if(found)
  list(JOIN found "\n  " text)
  message(FATAL_ERROR "function-local statics with guards (a fork can catch them half-way):\n  ${text}")
endif()
message(STATUS "no guarded function-local statics in: ${LIBS}")
