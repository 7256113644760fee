inputs:
let
  inherit (inputs.nixpkgs) lib;
  hostDirs = lib.filterAttrs (_: type: type == "directory") (builtins.readDir ./.);
in
lib.genAttrs (builtins.attrNames hostDirs) (name:
  lib.nixosSystem {
    specialArgs = { inherit inputs; };
    modules = [
      ./${name}
      ../nixos-modules
      ({ config, ... }: {
        networking.hostName = lib.mkDefault name;
        sops.defaultSopsFile = ../secrets/${config.networking.hostName}.yaml;
        nixpkgs.hostPlatform = lib.mkDefault (if name == "pi" then "aarch64-linux" else "x86_64-linux");
      })
    ];
  })
