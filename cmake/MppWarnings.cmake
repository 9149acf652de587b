# Warnings used for every target the project builds itself.
function(mpp_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                         -Wno-sign-conversion -Wnon-virtual-dtor -Wold-style-cast)
  if(MPP_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
