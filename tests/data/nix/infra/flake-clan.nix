{
  inputs.clan-core.url = "https://git.clan.lol/clan/clan-core/archive/main.tar.gz";
  inputs.nixpkgs.follows = "clan-core/nixpkgs";

  outputs = { self, clan-core, nixpkgs, ... }:
    let
      clan = clan-core.lib.clan {
        inherit self;
        meta.name = "homelab";
        specialArgs = { };
        inventory.machines = {
          octavia = { tags = [ "server" "backup" ]; deploy.targetHost = "root@10.20.0.2"; };
        };
        inventory.instances.sshd = {
          module = { name = "sshd"; input = "clan-core"; };
          roles.server.tags.all = { };
        };
        machines.octavia = { config, pkgs, ... }: {
          imports = [ ./machines/octavia/configuration.nix ];
          nixpkgs.hostPlatform = "x86_64-linux";
          clan.core.networking.targetHost = "root@octavia";
          environment.systemPackages = [ pkgs.git ];
        };
      };
    in {
      inherit (clan.config) nixosConfigurations nixosModules clanInternals;
      clan = clan.config;
      devShells = clan-core.inputs.nixpkgs.lib.genAttrs [ "x86_64-linux" ] (system: {
        default = clan-core.inputs.nixpkgs.legacyPackages.${system}.mkShell {
          packages = [ clan-core.packages.${system}.clan-cli ];
        };
      });
    };
}
