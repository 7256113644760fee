{
  description = "Switchyard: CI/CD for NixOS infrastructure flakes (plan, build and deploy what a push affects)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      overlays.default = final: prev: { switchyard = final.callPackage ./nix/package.nix { }; };

      packages = forAllSystems (pkgs: rec {
        switchyard = pkgs.callPackage ./nix/package.nix { };
        default = switchyard;
      });

      # `nix run . -- plan --from A --to B`
      apps = forAllSystems (pkgs: rec {
        switchyard = {
          type = "app";
          program = "${self.packages.${pkgs.stdenv.hostPlatform.system}.switchyard}/bin/switchyard";
        };
        default = switchyard;
      });

      # services.switchyard; the package defaults to this flake's build for the host's system.
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.switchyard.package =
            lib.mkDefault
              self.packages.${pkgs.stdenv.hostPlatform.system}.switchyard;
        };

      # What scripts/install-deps.sh installs on Debian, for working on Switchyard itself.
      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.switchyard ];
          packages = [
            pkgs.catch2
            pkgs.httplib
            pkgs.ccache
            pkgs.clang-tools
            pkgs.git
            pkgs.openssh
            pkgs.nix
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);
    };
}
