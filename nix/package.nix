# Switchyard built from this repository with CMake and Ninja, from nixpkgs' packages of its
# dependencies (every attribute name is checked against nixpkgs' source: nix/README.md).
# The tests are not built here: they need real sshd test hosts, a nix-daemon and the network
# namespaces of a root machine, none of which a Nix build sandbox has (scripts/test.sh runs them).
{
  lib,
  stdenv,
  cmake,
  ninja,
  pkg-config,
  nlohmann_json,
  libgit2,
  libssh,
  curl,
  sqlite,
  libpqxx,
  yaml-cpp,
  cli11,
  openssl,
  mustache-hpp,
}:

stdenv.mkDerivation {
  pname = "switchyard";
  version = "0.1.0";

  # The repository without what a local build leaves behind (build trees, state, caches).
  src = lib.cleanSourceWith {
    src = lib.cleanSource ../.;
    filter =
      path: type:
      let
        base = baseNameOf path;
      in
      !(type == "directory" && (base == "build" || lib.hasPrefix "build-" base || base == ".switchyard"))
      && base != "result";
  };

  nativeBuildInputs = [
    cmake
    ninja
    pkg-config
  ];

  buildInputs = [
    nlohmann_json
    libgit2
    libssh
    curl
    sqlite
    libpqxx
    yaml-cpp
    cli11
    openssl
    mustache-hpp
  ];

  # nixpkgs installs kainjow's header as include/mustache.hpp; the sources include it as
  # <kainjow/mustache.hpp>, where Debian's libkainjow-mustache-dev puts it.
  preConfigure = ''
    mkdir -p "$NIX_BUILD_TOP/include/kainjow"
    ln -s ${mustache-hpp}/include/mustache.hpp "$NIX_BUILD_TOP/include/kainjow/mustache.hpp"
    export NIX_CFLAGS_COMPILE="''${NIX_CFLAGS_COMPILE:-} -isystem $NIX_BUILD_TOP/include"
  '';

  cmakeFlags = [
    "-DSWITCHYARD_TESTS=OFF"
    "-DCMAKE_BUILD_TYPE=RelWithDebInfo"
    "-DSWITCHYARD_INSTALL_SYSTEM_FILES=OFF"
  ];

  # `switchyard` runs nix, git and ssh from PATH at run time; the NixOS module puts them on
  # the service's path, and a shell that runs `nix run` has them already.

  meta = {
    description = "CI/CD runner for NixOS infrastructure flakes: plans, builds and deploys the machines a push affects";
    mainProgram = "switchyard";
    platforms = lib.platforms.linux;
  };
}
