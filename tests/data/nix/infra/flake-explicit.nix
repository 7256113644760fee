{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.home-manager.url = "github:nix-community/home-manager";
  inputs.home-manager.inputs.nixpkgs.follows = "nixpkgs";

  outputs = inputs@{ self, nixpkgs, home-manager }: {
    nixosModules = {
      common = import ./modules/common.nix;
      web = ./modules/web;
      default = { imports = [ self.nixosModules.common ]; };
    };

    nixosConfigurations.web01 = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [
        self.nixosModules.default
        self.nixosModules.web
        ./hosts/web01/configuration.nix
        home-manager.nixosModules.home-manager
      ];
    };
    nixosConfigurations."db-01" = nixpkgs.lib.nixosSystem {
      system = "aarch64-linux";
      specialArgs = { inherit inputs; };
      modules = [ inputs.self.nixosModules.default ./hosts/db-01 ];
    };
    machineConfigurations = builtins.mapAttrs
      (name: _: nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [ (./machines + "/${name}/configuration.nix") ];
      })
      (builtins.readDir ./machines);
  };
}
