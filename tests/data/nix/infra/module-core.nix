{ config, lib, pkgs, modulesPath, ... }:

with lib;

let
  cfg = config.homelab.core;
  sshKeys = import ../../keys.nix;
  mkUser = name: { uid, admin ? false, ... }: {
    isNormalUser = true;
    inherit uid;
    extraGroups = optional admin "wheel" ++ [ "networkmanager" ];
    openssh.authorizedKeys.keys = sshKeys.${name} or [ ];
  };
in
{
  imports = [
    (modulesPath + "/profiles/minimal.nix")
    ./nix.nix
    ./users.nix
    ../monitoring
  ];

  options.homelab.core = {
    enable = mkEnableOption "the common base configuration";
    users = mkOption {
      type = types.attrsOf (types.submodule { options.uid = mkOption { type = types.int; }; });
      default = { };
      description = ''
        Users that exist on every machine.
        Keys come from keys.nix; ''${name} is interpolated at evaluation.
      '';
    };
    timeZone = mkOption { type = types.str; default = "Europe/Berlin"; };
  };

  config = mkIf cfg.enable {
    time.timeZone = cfg.timeZone;
    users.users = mapAttrs mkUser cfg.users;
    services.openssh = {
      enable = true;
      settings.PasswordAuthentication = false;
      settings.KbdInteractiveAuthentication = false;
    };
    boot.kernel.sysctl."net.ipv4.ip_forward" = 1;
    environment.etc."issue".text = "Welcome to ${config.networking.hostName}\n";
    networking.firewall.allowedTCPPorts = [ 22 ] ++ optionals config.services.nginx.enable [ 80 443 ];
    assertions = [{
      assertion = cfg.users != { } -> config.services.openssh.enable;
      message = "homelab.core: users need ssh";
    }];
    systemd.services.backup = {
      script = ''
        set -euo pipefail
        ${pkgs.restic}/bin/restic backup /var/lib --exclude-file=${./backup-excludes.txt}
        if [ "$(date +%u)" -eq 7 ]; then
          ${pkgs.restic}/bin/restic forget --keep-weekly 8
        fi
      '';
      serviceConfig.Type = "oneshot";
      startAt = "daily";
    };
    sops.secrets."restic-password".sopsFile = ../../secrets/${config.networking.hostName}.yaml;
    nixpkgs.overlays = [ (final: prev: { restic = prev.restic.overrideAttrs (o: { doCheck = false; }); }) ];
  };
}
