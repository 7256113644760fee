# Installing Switchyard (issue 15): `ninja install` (the Nix package) and the Debian package
# CPack makes from the build tree (`scripts/build.sh && cd build && cpack -G DEB`; no second
# compile: it packages what is built).
include(GNUInstallDirs)

# The system files (systemd unit, sysusers.d, tmpfiles.d, /etc/switchyard) are for a distribution
# install; the Nix package turns them off (NixOS writes its unit from nix/module.nix).
option(SWITCHYARD_INSTALL_SYSTEM_FILES "Install the systemd unit, sysusers, tmpfiles and /etc" ON)

# CPack's install step must not build everything first (the tests, the benchmarks): the
# package needs only what its install rules name, which the default build has made.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS switchyard RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(PROGRAMS ${PROJECT_SOURCE_DIR}/hooks/post-receive ${PROJECT_SOURCE_DIR}/hooks/pre-push
  DESTINATION ${CMAKE_INSTALL_DATADIR}/switchyard/hooks)
install(FILES ${PROJECT_SOURCE_DIR}/templates/switchyard.example.yaml
  ${PROJECT_SOURCE_DIR}/templates/github-app-manifest.json
  DESTINATION ${CMAKE_INSTALL_DOCDIR})

# switchyard(1), from the CLI's own help (`switchyard manpage`).
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/switchyard.1.gz
  COMMAND ${CMAKE_COMMAND} -DBIN=$<TARGET_FILE:switchyard> -DOUT=${PROJECT_BINARY_DIR}
          -P ${PROJECT_SOURCE_DIR}/packaging/manpage.cmake
  DEPENDS switchyard ${PROJECT_SOURCE_DIR}/packaging/manpage.cmake
  WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
  COMMENT "switchyard(1) from the CLI's help")
add_custom_target(switchyard_manpage ALL DEPENDS ${PROJECT_BINARY_DIR}/switchyard.1.gz)
install(FILES ${PROJECT_BINARY_DIR}/switchyard.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

if(SWITCHYARD_INSTALL_SYSTEM_FILES)
  set(deb ${PROJECT_SOURCE_DIR}/packaging/debian)
  install(FILES ${deb}/switchyard.service DESTINATION lib/systemd/system)
  install(FILES ${deb}/sysusers.conf DESTINATION lib/sysusers.d RENAME switchyard.conf)
  install(FILES ${deb}/tmpfiles.conf DESTINATION lib/tmpfiles.d RENAME switchyard.conf)
  install(FILES ${deb}/README.Debian DESTINATION ${CMAKE_INSTALL_DOCDIR})
  # The conffile: the example, with the secrets under /etc/switchyard/secrets/ (a Debian
  # machine has no /run/secrets that survives a reboot).
  file(READ ${PROJECT_SOURCE_DIR}/templates/switchyard.example.yaml example_yaml)
  string(REPLACE "/run/secrets/" "/etc/switchyard/secrets/" debian_yaml "${example_yaml}")
  file(WRITE ${PROJECT_BINARY_DIR}/packaging/switchyard.yaml "${debian_yaml}")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
    ${PROJECT_SOURCE_DIR}/templates/switchyard.example.yaml)
  install(FILES ${PROJECT_BINARY_DIR}/packaging/switchyard.yaml DESTINATION /etc/switchyard)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME switchyard)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "CI/CD runner for NixOS infrastructure flakes: plans, builds and deploys what a push affects")
set(CPACK_PACKAGE_CONTACT "Switchyard maintainers <switchyard@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)  # what CPACK_SET_DESTDIR installs under, whatever the build tree's prefix
set(CPACK_SET_DESTDIR ON)  # the conffile's destination is absolute (/etc)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# run time: nix (Debian's nix-bin), git and ssh for fetching, building and deploying
set(CPACK_DEBIAN_PACKAGE_DEPENDS "nix-bin | nix, git, openssh-client")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
  ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
  ${PROJECT_SOURCE_DIR}/packaging/debian/postrm
  ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
