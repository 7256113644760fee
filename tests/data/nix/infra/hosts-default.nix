{ config, pkgs, lib, hostName, inputs, ... }:
{
  imports = [
    ./hardware-configuration.nix
    ./disko.nix
    inputs.sops-nix.nixosModules.sops
    "${inputs.nixpkgs}/nixos/modules/profiles/hardened.nix"
  ];

  networking = {
    inherit hostName;
    interfaces.eth0.ipv4.addresses = [{ address = "10.20.0.2"; prefixLength = 24; }];
    defaultGateway = "10.20.0.1";
    nameservers = [ "1.1.1.1" "9.9.9.9" ];
  };

  services.nginx = {
    enable = true;
    virtualHosts."${hostName}.example.org" = {
      enableACME = true;
      forceSSL = true;
      root = ./www;
      extraConfig = builtins.readFile ./nginx-extra.conf;
    };
  };

  environment.systemPackages = [
    (pkgs.writeShellScriptBin "deploy-hook" (builtins.readFile ../../scripts/deploy-hook.sh))
    (pkgs.callPackage ../../pkgs/my-tool { })
  ];

  system.stateVersion = "24.05";
}
