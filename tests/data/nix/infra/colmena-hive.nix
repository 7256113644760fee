{
  meta = {
    nixpkgs = import <nixpkgs> { system = "x86_64-linux"; };
    nodeNixpkgs.pi = import <nixpkgs> { system = "aarch64-linux"; };
    specialArgs.secrets = ./secrets;
  };

  defaults = { pkgs, lib, name, nodes, ... }: {
    imports = [ ./modules/core ];
    networking.hostName = name;
    deployment = {
      targetUser = "root";
      buildOnTarget = lib.mkDefault false;
      tags = [ "all" ];
    };
    environment.systemPackages = with pkgs; [ vim htop ];
  };

  vps-het-1 = { name, nodes, ... }: {
    imports = [ ./hosts/${name} ];
    deployment.targetHost = "vps-het-1.example.org";
    deployment.keys."wg.key" = {
      keyFile = ./secrets/wg-${name}.key;
      destDir = "/run/keys";
    };
    services.nginx.virtualHosts."example.org".locations."/".proxyPass =
      "http://${nodes.pi.config.networking.hostName}:8080";
  };

  pi = { ... }: {
    imports = [ ./hosts/pi ./hardware/rpi4.nix ];
    deployment.targetHost = "10.20.0.7";
    deployment.buildOnTarget = true;
  };
}
