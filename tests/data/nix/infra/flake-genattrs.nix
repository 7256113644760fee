# The seed repository's shape: five hosts built by genAttrs over their names.
{
  description = "homelab";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";
    sops-nix = {
      url = "github:Mic92/sops-nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    clan-core.url = "git+https://git.clan.lol/clan/clan-core";
    colmena.url = "github:zhaofengli/colmena";
  };

  outputs = { self, nixpkgs, sops-nix, clan-core, ... }@inputs:
    let
      system = "x86_64-linux";
      lib = nixpkgs.lib;
      hosts = [ "octavia" "vps-het-1" "vps-het-2" "pi" "demo" ];
      mkHost = host: lib.nixosSystem {
        inherit system;
        specialArgs = { inherit inputs self; hostName = host; };
        modules = [
          ./hosts/${host}
          ./modules/core
          ../shared/users.nix
          sops-nix.nixosModules.sops
          { networking.hostName = host; system.configurationRevision = self.rev or "dirty"; }
        ] ++ lib.optional (host == "pi") ./modules/rpi.nix;
      };
    in {
      nixosConfigurations = lib.genAttrs hosts mkHost;

      devShells.${system}.default = nixpkgs.legacyPackages.${system}.mkShell {
        packages = with nixpkgs.legacyPackages.${system}; [ sops age nixpkgs-fmt ];
        shellHook = ''
          echo "welcome to ${self.description or "the homelab"}"
          export SOPS_AGE_KEY_FILE=$HOME/.config/sops/age/keys.txt
        '';
      };

      formatter.${system} = nixpkgs.legacyPackages.${system}.nixpkgs-fmt;
    };
}
