#include "runner/lab/fake_nixpkgs.h"

#include <filesystem>
#include <system_error>

#include "runner/core/error.h"
#include "runner/lab/nix_text.h"

namespace fs = std::filesystem;

namespace runner::lab {
namespace {

constexpr const char* kFlake = R"NIX({
  description = "Switchyard lab: a fake nixpkgs (toy module system, static busybox, no network)";
  outputs = { self }:
    let
      system = "x86_64-linux";
      lib = import ./lib { nixpkgs = ./.; };
    in {
      inherit lib;
      legacyPackages.${system} = import ./pkgs { inherit system; };
      packages.${system} = { inherit (self.legacyPackages.${system}) busybox hello; };
    };
}
)NIX";

// lib: the functions infra flakes call, and nixosSystem over a toy module system. Modules are
// paths, functions or attribute sets; `imports` are followed depth-first; definitions merge
// recursively (attribute sets merge, lists concatenate, otherwise the later module wins).
// There are no option declarations: nixos/options.nix defines the defaults first.
constexpr const char* kLib = R"NIX({ nixpkgs }:
let
  b = builtins;
  lib = rec {
    version = "fake-24.05";
    inherit (b) attrNames attrValues mapAttrs filter elem concatStringsSep toJSON;
    genAttrs = names: f: b.listToAttrs (b.map (n: { name = n; value = f n; }) names);
    nameValuePair = name: value: { inherit name value; };
    mapAttrs' = f: set: b.listToAttrs (b.map (n: f n set.${n}) (b.attrNames set));
    mapAttrsToList = f: set: b.map (n: f n set.${n}) (b.attrNames set);
    filterAttrs = pred: set:
      b.listToAttrs (b.concatMap (n: if pred n set.${n} then [ (nameValuePair n set.${n}) ] else [ ])
        (b.attrNames set));
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    optionalString = cond: s: if cond then s else "";
    optionalAttrs = cond: set: if cond then set else { };
    mkDefault = x: x;
    mkForce = x: x;
    isDerivation = x: b.isAttrs x && (x.type or null) == "derivation";
    recursiveUpdate = merge;
    merge = x: y:
      if b.isAttrs x && b.isAttrs y && !(isDerivation x) && !(isDerivation y)
      then x // y // b.mapAttrs (n: _: merge x.${n} y.${n}) (b.intersectAttrs x y)
      else if b.isList x && b.isList y then x ++ y
      else y;
    evalModules = { modules, specialArgs ? { } }:
      let
        args = { inherit config lib; pkgs = config._module.pkgs; } // specialArgs;
        load = m:
          let f = if b.isPath m || b.isString m then import m else m;
          in if b.isFunction f then f args else f;
        flatten = ms: b.concatMap (m:
          let r = load m; in [ (b.removeAttrs r [ "imports" ]) ] ++ flatten (r.imports or [ ])) ms;
        config = b.foldl' merge { } (flatten modules);
      in config;
    nixosSystem = { system ? null, modules, specialArgs ? { }, ... }:
      let
        config = evalModules {
          inherit specialArgs;
          modules = [ (nixpkgs + "/nixos/options.nix") (nixpkgs + "/nixos/system.nix") ]
            ++ optional (system != null) { nixpkgs.hostPlatform = system; }
            ++ modules;
        };
      in { _type = "configuration"; inherit config; pkgs = config._module.pkgs; options = { }; };
  };
in lib
)NIX";

constexpr const char* kPkgs =
    R"NIX(# The package set. The static busybox is the only real package: every derivation is built
# by `busybox sh -e -c SCRIPT` inside the sandbox.
{ system }:
rec {
  inherit system;
  busybox = builtins.path { path = ../tools; name = "busybox-1.35.0"; };
  runCommand = name: env: script: derivation ({
    inherit name system;
    builder = "${busybox}/bin/busybox";
    args = [ "sh" "-e" "-c" script ];
    PATH = "${busybox}/bin";
  } // env);
  writeText = name: text:
    runCommand name { inherit text; passAsFile = [ "text" ]; } ''cp "$textPath" "$out"'';
  writeScript = name: text:
    runCommand name { inherit text; passAsFile = [ "text" ]; } ''cp "$textPath" "$out"; chmod +x "$out"'';
  # a versioned fake package, so that `nix store diff-closures` has versions to report
  hello = let version = import ./hello-version.nix; in runCommand "hello-${version}" { } ''
    mkdir -p $out/bin
    printf '#!${busybox}/bin/sh\necho "Hello, world! (fake hello ${version})"\n' > $out/bin/hello
    chmod +x $out/bin/hello
  '';
}
)NIX";

constexpr const char* kOptions =
    R"NIX(# Option defaults: the toy module system has no declarations, a default is the first definition.
{ config, lib, ... }: {
  _module.pkgs = import ../pkgs { system = config.nixpkgs.hostPlatform; };
  nixpkgs.hostPlatform = "x86_64-linux";
  networking.hostName = "nixos";
  system.nixos.label = lib.version;
  system.stateVersion = "24.05";
  system.configurationRevision = null;
  environment.etc = { };
  environment.systemPackages = [ ];
  services.openssh.enable = false;
  users.users = { };
  clan = { };          # clan.core.networking.targetHost (Clan)
  deployment = { };    # deployment.targetHost (Colmena)
  testing = {
    failActivation = false;   # switch/test exit 3
    buildSeconds = 0;         # the toplevel's builder sleeps this long
    evalWeight = 0;           # CPU and memory burnt when the toplevel is evaluated
    activationSeconds = 0;    # switch/test sleep this long
    extraActivation = "";     # shell snippet run during switch/test
  };
}
)NIX";

constexpr const char* kSystem =
    R"NIX(# config.system.build.toplevel: a real derivation with bin/switch-to-configuration.
{ config, pkgs, lib, ... }:
let
  b = builtins;
  host = config.networking.hostName;
  t = config.testing;
  rev = config.system.configurationRevision;
  etc = pkgs.runCommand "etc" { } (''
    mkdir -p $out
  '' + b.concatStringsSep "" (lib.mapAttrsToList (name: v: ''
    mkdir -p "$out/$(dirname ${name})"
    ln -s ${pkgs.writeText "etc-${b.baseNameOf name}" v.text} "$out/${name}"
  '') config.environment.etc));
  # every definition outside system and _module: any option change changes the toplevel
  configJson = pkgs.writeText "config.json" (b.toJSON (b.removeAttrs config [ "system" "_module" ]));
  systemPath = pkgs.runCommand "system-path" { } ''
    mkdir -p $out/bin
    for p in ${toString ([ pkgs.busybox ] ++ config.environment.systemPackages)}; do
      for f in $p/bin/*; do ln -sf $f $out/bin/; done
    done
  '';
  burn = n: b.foldl' b.add 0 (b.genList (x: x * 2) n);
in {
  system.build.etc = etc;
  system.build.toplevel = pkgs.runCommand "nixos-system-${host}-${config.system.nixos.label}" {
    inherit host;
    template = ./switch-to-configuration.sh;
    extraActivation = t.extraActivation;
    passAsFile = [ "extraActivation" ];
    failActivation = if t.failActivation then "1" else "0";
    activationSeconds = toString t.activationSeconds;
    buildSeconds = toString t.buildSeconds;
    openssh = if config.services.openssh.enable then "1" else "0";
    configurationRevision = if rev == null then "" else rev;
    evalBurn = if t.evalWeight > 0 then toString (burn t.evalWeight) else "";
  } ''
    if [ "$buildSeconds" != 0 ]; then echo "building $host slowly ($buildSeconds s)"; sleep "$buildSeconds"; fi
    mkdir -p $out/bin
    ln -s ${etc} $out/etc
    ln -s ${configJson} $out/config.json
    ln -s ${systemPath} $out/sw
    printf %s "$host" > $out/hostname
    printf %s "${config.system.nixos.label}" > $out/nixos-version
    if [ -n "$configurationRevision" ]; then printf %s "$configurationRevision" > $out/configuration-revision; fi
    cp "$extraActivationPath" $out/extra-activation.sh
    sed -e "s|@out@|$out|g" -e "s|@busybox@|${pkgs.busybox}|g" -e "s|@host@|$host|g" \
        -e "s|@failActivation@|$failActivation|g" -e "s|@activationSeconds@|$activationSeconds|g" \
        -e "s|@openssh@|$openssh|g" "$template" > $out/bin/switch-to-configuration
    chmod +x $out/bin/switch-to-configuration
    ln -s switch-to-configuration $out/bin/activate
    echo "built $host"
  '';
}
)NIX";

// @out@ etc. are filled by the toplevel's builder (sed), @@REVISION@@ by the generator.
constexpr const char* kSwitch = R"SH(#!@busybox@/bin/sh
# Fake NixOS switch-to-configuration for @host@ (template revision @@REVISION@@).
# usage: switch-to-configuration switch|boot|test|dry-activate
# State: ${FAKE_NIXOS_STATE:-/var/lib/fake-nixos} (current-system, activated, boot-default, etc/, switch.log)
set -eu
export PATH=@busybox@/bin:$PATH
toplevel=@out@
state=${FAKE_NIXOS_STATE:-/var/lib/fake-nixos}
action=${1:-}
case "$action" in
  switch|boot|test|dry-activate) ;;
  *) echo "Usage: $0 [switch|boot|test|dry-activate]" >&2; exit 1 ;;
esac
if [ "$action" = dry-activate ]; then
  echo "would activate $toplevel (host @host@) in $state"
  exit 0
fi
mkdir -p "$state"
record() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $action @host@ $toplevel$*" >> "$state/switch.log"; }
if [ "$action" != boot ]; then
  if [ @activationSeconds@ != 0 ]; then sleep @activationSeconds@; fi
  if [ @failActivation@ = 1 ]; then
    record " FAILED"
    echo "activation of $toplevel failed (testing.failActivation = true)" >&2
    exit 3
  fi
  ln -sfn "$toplevel" "$state/current-system"
  printf '%s\n' "$toplevel" > "$state/activated"
  if [ -d "$state/etc" ]; then chmod -R u+w "$state/etc"; rm -rf "$state/etc"; fi
  cp -rL "$toplevel/etc" "$state/etc"
  # services.openssh.enable: the host's sshd runs exactly when it is enabled
  if [ -z "${FAKE_NIXOS_NO_SSHD:-}" ]; then
    pidfile="$state/sshd.pid"
    running=0
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then running=1; fi
    if [ @openssh@ = 1 ] && [ $running = 0 ]; then
      /usr/sbin/sshd -f /etc/ssh/sshd_config -o "PidFile=$pidfile" -E "$state/sshd.log"
      echo "started sshd"
    elif [ @openssh@ = 0 ] && [ $running = 1 ]; then
      kill "$(cat "$pidfile")"
      rm -f "$pidfile"
      echo "stopped sshd"
    fi
  fi
  sh -e "$toplevel/extra-activation.sh"
fi
if [ "$action" != test ]; then
  printf '%s\n' "$toplevel" > "$state/boot-default"
fi
record ""
echo "switched @host@ to $toplevel ($action)"
)SH";

constexpr const char* kReadme =
    "# Fake nixpkgs\n\nGenerated by Switchyard's lab: a toy module system and a static busybox.\n";

}  // namespace

FakeNixpkgs FakeNixpkgs::create(ProcessRunner& procs, const fs::path& dir,
                                const FakeNixpkgsOptions& options) {
  std::error_code ec;
  if (!fs::is_regular_file(options.busybox, ec))
    throw InputError(options.busybox.string() +
                     ": no static busybox there (Debian: apt-get install busybox-static)");
  fs::path abs = fs::absolute(dir);
  FakeNixpkgs p{GitCli(procs, abs)};
  p.helloVersion_ = options.helloVersion;
  p.git_.init();
  const std::string d = abs.string();
  writeTextFile(d, "flake.nix", kFlake);
  writeTextFile(d, "lib/default.nix", kLib);
  writeTextFile(d, "pkgs/default.nix", kPkgs);
  writeTextFile(d, "pkgs/hello-version.nix", nixString(options.helloVersion) + "\n");
  writeTextFile(d, "nixos/options.nix", kOptions);
  writeTextFile(d, "nixos/system.nix", kSystem);
  writeTextFile(d, "nixos/switch-to-configuration.sh",
                fillTemplate(kSwitch, {{"@REVISION@", std::to_string(p.switchRevision_)}}));
  writeTextFile(d, "README.md", kReadme);
  fs::create_directories(abs / "tools" / "bin");
  fs::copy_file(options.busybox, abs / "tools" / "bin" / "busybox",
                fs::copy_options::overwrite_existing);
  fs::permissions(abs / "tools" / "bin" / "busybox", fs::perms(0755));
  if (!fs::is_symlink(abs / "tools" / "bin" / "sh"))
    fs::create_symlink("busybox", abs / "tools" / "bin" / "sh");
  p.git_.commitAll("fake nixpkgs: initial");
  return p;
}

std::string FakeNixpkgs::url() const { return "git+file://" + path().string(); }

std::string FakeNixpkgs::setHelloVersion(const std::string& version) {
  helloVersion_ = version;
  writeTextFile(path().string(), "pkgs/hello-version.nix", nixString(version) + "\n");
  return git_.commitAll("hello: " + version);
}

std::string FakeNixpkgs::touchReadme(const std::string& text) {
  writeTextFile(path().string(), "README.md", std::string(kReadme) + "\n" + text + "\n");
  return git_.commitAll("README: " + text);
}

std::string FakeNixpkgs::changeSwitchScript() {
  ++switchRevision_;
  writeTextFile(path().string(), "nixos/switch-to-configuration.sh",
                fillTemplate(kSwitch, {{"@REVISION@", std::to_string(switchRevision_)}}));
  return git_.commitAll("switch-to-configuration: template revision " +
                        std::to_string(switchRevision_));
}

}  // namespace runner::lab
