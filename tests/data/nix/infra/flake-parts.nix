{
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";
    flake-parts.url = "github:hercules-ci/flake-parts";
    srvos.url = "github:nix-community/srvos";
  };

  outputs = inputs@{ flake-parts, ... }:
    flake-parts.lib.mkFlake { inherit inputs; } ({ self, lib, withSystem, ... }: {
      systems = [ "x86_64-linux" "aarch64-linux" ];
      imports = [ ./hosts/flake-module.nix ./dev/flake-module.nix ];

      perSystem = { config, pkgs, system, ... }: {
        packages.default = pkgs.hello;
        checks = lib.mapAttrs' (n: v: lib.nameValuePair "host-${n}" v.config.system.build.toplevel)
          (lib.filterAttrs (_: c: c.pkgs.system == system) self.nixosConfigurations);
      };

      flake = {
        nixosModules.server = ./modules/server.nix;
        nixosConfigurations = {
          build01 = withSystem "x86_64-linux" ({ pkgs, ... }:
            inputs.nixpkgs.lib.nixosSystem {
              inherit pkgs;
              modules = [ inputs.srvos.nixosModules.server self.nixosModules.server ./hosts/build01 ];
            });
        };
      };
    });
}
