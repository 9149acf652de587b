# Debian packages of mpp (CPack's DEB generator, one package per install component of
# cmake/MppInstall.cmake). Build them from a shared, Release build installed under /usr:
#   cmake --preset package && cmake --build --preset package --target package
# (`make package` does that; the .deb files land in build/package/). tests/consumer/ installs them
# into a scratch root with `dpkg -x` and builds programs against them.
#   libmpp<SOVERSION>      libmpp.so.<SOVERSION>                    Depends from dpkg-shlibdeps
#   libmpp-dev             headers, libmpp.so, CMake + pkg-config   Depends: libmpp<SOVERSION> (= v)
#   libmpp-mpi<SOVERSION>  libmpp_mpi.so.<SOVERSION>                Depends: libmpp<SOVERSION>
#                                                                     (= v),
#                                                                     libopenmpi (dpkg-shlibdeps)
#   libmpp-mpi-dev         mpi headers, libmpp_mpi.so, mppMpiTargets.cmake, mpp-mpi.pc
#                                                                   Depends: libmpp-dev (= v),
#                                                                     libmpp-mpi<SOVERSION> (= v),
#                                                                     mpi-default-dev
# A static build packages no runtime library: the -dev packages then hold the .a archives.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mpp)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "mpp maintainers <mpp-maintainers@users.noreply.github.com>")
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)  # component DEPENDS below become Depends: (= v)
set(CPACK_STRIP_FILES ON)

set(_lib libmpp${MPP_SOVERSION})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${_lib})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_DEVEL_PACKAGE_NAME libmpp-dev)
set(CPACK_DEBIAN_MPI_RUNTIME_PACKAGE_NAME libmpp-mpi${MPP_SOVERSION})
set(CPACK_DEBIAN_MPI_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_MPI_DEVEL_PACKAGE_NAME libmpp-mpi-dev)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "${PROJECT_DESCRIPTION}.\nThe shared library libmpp.so.${MPP_SOVERSION}.")
string(CONCAT CPACK_COMPONENT_DEVEL_DESCRIPTION
    "${PROJECT_DESCRIPTION}.\n"
    "Headers, CMake package (find_package(mpp)) and pkg-config file (mpp).")
set(CPACK_COMPONENT_MPI_RUNTIME_DESCRIPTION
    "mpp::mpi::Pool, mpp's Pool over MPI.\nThe shared library libmpp_mpi.so.${MPP_SOVERSION}.")
string(CONCAT CPACK_COMPONENT_MPI_DEVEL_DESCRIPTION
    "mpp::mpi::Pool, mpp's Pool over MPI.\n"
    "Headers, mpp::mpi for find_package(mpp), pkg-config file (mpp-mpi).")

# Shared libraries' own dependencies (libc6, libstdc++6, libopenmpi3, ...) from dpkg-shlibdeps;
# libmpp_mpi.so needs libmpp.so, which dpkg-shlibdeps finds in the build tree (it names the
# package by the component dependency below instead).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR})
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY "=")

if(BUILD_SHARED_LIBS)
  set(CPACK_COMPONENT_DEVEL_DEPENDS runtime)
  set(CPACK_COMPONENT_MPI_RUNTIME_DEPENDS runtime)
  set(CPACK_COMPONENT_MPI_DEVEL_DEPENDS devel mpi_runtime)
  set(CPACK_COMPONENTS_ALL runtime devel)
  if(TARGET mpp_mpi)
    list(APPEND CPACK_COMPONENTS_ALL mpi_runtime mpi_devel)
  endif()
else()
  set(CPACK_COMPONENT_MPI_DEVEL_DEPENDS devel)
  set(CPACK_COMPONENTS_ALL devel)
  if(TARGET mpp_mpi)
    list(APPEND CPACK_COMPONENTS_ALL mpi_devel)
  endif()
endif()
# find_package(mpp) with mpp::mpi needs MPI's own CMake/compiler files.
set(CPACK_DEBIAN_MPI_DEVEL_PACKAGE_DEPENDS "mpi-default-dev")
set(CPACK_DEBIAN_MPI_RUNTIME_PACKAGE_RECOMMENDS "mpi-default-bin")
include(CPack)
