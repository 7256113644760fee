# Evaluates nix/module.nix with the real nixpkgs `lib.evalModules` against stub declarations of
# the few NixOS options it sets (their names and types as in nixpkgs' nixos/lib/
# systemd-unit-options.nix and nixos/modules/config/users-groups.nix, nix/README.md) and stub
# packages. Used by tests/packaging/nix_module_test.cc:
#
#   nix-instantiate --eval --strict --json --read-write-mode tests/nix/module_eval.nix \
#     --arg nixpkgsLib /path/to/nixpkgs-lib --arg config 'CONFIG' [--arg bin /path/to/switchyard]
#
# `config` is a NixOS module (an attribute set or a function) setting services.switchyard.
# The result: the unit, users, groups, firewall ports, failed assertions, and the rendered
# settings file (written into the store with builtins.toFile, so a test can check it).
{
  nixpkgsLib,
  config,
}:
let
  lib = import (nixpkgsLib + "/lib");
  inherit (lib) mkOption types;

  # A package stand-in: a name and a store path string.
  stubPackage = name: {
    inherit name;
    type = "derivation";
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };

  # formats.yaml's type, as nixpkgs' pkgs/pkgs-lib/formats.nix declares it.
  yamlValue =
    types.nullOr (
      types.oneOf [
        types.bool
        types.int
        types.float
        types.str
        types.path
        (types.attrsOf yamlValue)
        (types.listOf yamlValue)
      ]
    )
    // {
      description = "YAML 1.1 value";
    };

  pkgs = {
    inherit lib;
    formats.yaml = { }: { type = yamlValue; };
    # Real files: the test reads them.
    writeText = name: text: builtins.toFile name text;
    # The build step as data: the test runs its script with the built switchyard on PATH.
    runCommand = name: env: script: {
      inherit name env script;
      type = "derivation";
      outPath = "/nix/store/11111111111111111111111111111111-${name}";
    };
    git = stubPackage "git";
    openssh = stubPackage "openssh";
  };

  # systemd's unitOption: lists concatenate, other values must agree.
  unitOption = types.mkOptionType {
    name = "systemd option";
    check = v: builtins.isList v || builtins.isString v || builtins.isInt v || builtins.isBool v;
    merge =
      loc: defs:
      if builtins.isList (lib.head defs).value then
        lib.concatMap (d: d.value) defs
      else
        lib.mergeEqualOption loc defs;
  };

  nixosStubs = {
    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      nix.package = mkOption {
        type = types.package;
        default = stubPackage "nix";
      };
      networking.firewall.allowedTCPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
      };
      users.users = mkOption {
        default = { };
        type = types.attrsOf (
          types.submodule {
            options = {
              isSystemUser = mkOption {
                type = types.bool;
                default = false;
              };
              group = mkOption {
                type = types.str;
                default = "";
              };
              home = mkOption {
                type = types.path;
                default = "/var/empty";
              };
              description = mkOption {
                type = types.str;
                default = "";
              };
            };
          }
        );
      };
      users.groups = mkOption {
        default = { };
        type = types.attrsOf (types.submodule { });
      };
      systemd.services = mkOption {
        default = { };
        type = types.attrsOf (
          types.submodule {
            options = {
              description = mkOption {
                type = types.str;
                default = "";
              };
              wantedBy = mkOption {
                type = types.listOf types.str;
                default = [ ];
              };
              wants = mkOption {
                type = types.listOf types.str;
                default = [ ];
              };
              after = mkOption {
                type = types.listOf types.str;
                default = [ ];
              };
              environment = mkOption {
                type = types.attrsOf (
                  types.nullOr (
                    types.oneOf [
                      types.str
                      types.path
                      types.package
                    ]
                  )
                );
                default = { };
              };
              path = mkOption {
                type = types.listOf (
                  types.oneOf [
                    types.package
                    types.str
                  ]
                );
                default = [ ];
              };
              restartTriggers = mkOption {
                type = types.listOf types.unspecified;
                default = [ ];
              };
              serviceConfig = mkOption {
                type = types.attrsOf unitOption;
                default = { };
              };
            };
          }
        );
      };
    };
  };

  eval = lib.evalModules {
    modules = [
      nixosStubs
      ../../nix/module.nix
      { _module.args.pkgs = pkgs; }
      { services.switchyard.package = lib.mkDefault (stubPackage "switchyard"); }
      config
    ];
  };
  c = eval.config;
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
  # NixOS stops at failed assertions before anything is built: so does this (the unit and the
  # file are not evaluated then; they may depend on what the assertions refuse).
  unit = if failedAssertions != [ ] then null else c.systemd.services.switchyard or null;
  configFile = if unit == null then null else lib.last unit.restartTriggers;
in
{
  inherit failedAssertions;
  service =
    if unit == null then
      null
    else
      {
        inherit (unit)
          description
          wantedBy
          after
          environment
          serviceConfig
          ;
        path = map (p: p.name) unit.path;
      };
  inherit (c.users) users groups;
  firewallPorts = c.networking.firewall.allowedTCPPorts;
  # The checked file: a runCommand (script + env) when checkConfig is on, else the file.
  configFile =
    if configFile == null then
      null
    else if configFile ? script then
      {
        path = configFile.outPath;
        inherit (configFile) script;
      }
    else
      {
        path = "${configFile}";
        script = null;
      };
}
