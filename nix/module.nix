# services.switchyard: the Switchyard daemon (`switchyard serve`) as a NixOS service.
#
# * `settings` is the configuration file (templates/switchyard.example.yaml) as Nix values,
#   rendered to YAML (as JSON, which is YAML) and checked when the system is built by running
#   `switchyard check-config` on it: a config error fails the build; secret files that exist
#   only at run time are warnings there (exit 1), which the check accepts.
# * Secrets are never in the store: they are given as paths on the machine
#   (`forges.<name>.tokenFile`, `sshIdentityFile`, …), handed to the unit with systemd's
#   LoadCredential, and the config names them under /run/credentials/switchyard.service/.
# * Host keys for deploys come from `knownHosts`, attribute sets like programs.ssh.knownHosts.
# * The service runs as its own system user with its state in StateDirectory, hardened as far
#   as running `nix` allows (the list of what is not restricted, and why, is in nix/README.md).
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.switchyard;
  inherit (lib) mkOption types;

  unitName = "switchyard";
  credDir = "/run/credentials/${unitName}.service";

  secretPath =
    types.addCheck types.str (
      p: lib.hasPrefix "/" p && !(lib.hasPrefix builtins.storeDir p)
    )
    // {
      description = "absolute path outside the Nix store (a string, so it is never copied into the store)";
    };

  forgeSecrets = types.submodule {
    options = {
      tokenFile = mkOption {
        type = types.nullOr secretPath;
        default = null;
        description = "File with the forge API token (`forges.<name>.token_file`).";
      };
      webhookSecretFile = mkOption {
        type = types.nullOr secretPath;
        default = null;
        description = "File with the webhook secret (`forges.<name>.webhook_secret_file`).";
      };
      privateKeyFile = mkOption {
        type = types.nullOr secretPath;
        default = null;
        description = "GitHub App private key (`forges.<name>.private_key_file`).";
      };
    };
  };

  knownHostType = types.submodule (
    { name, ... }:
    {
      options = {
        hostNames = mkOption {
          type = types.listOf types.str;
          default = [ name ];
          description = "Names and addresses of the host (`[host]:port` for another port).";
        };
        publicKey = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA…";
          description = "The host's public key.";
        };
        publicKeyFile = mkOption {
          type = types.nullOr types.path;
          default = null;
          description = "A file with the host's public key (read when the system is evaluated).";
        };
      };
    }
  );

  # One credential per secret: name -> path on the machine.
  forgeCredentials = lib.concatMapAttrs (
    forge: s:
    lib.optionalAttrs (s.tokenFile != null) { "forge-${forge}-token" = s.tokenFile; }
    // lib.optionalAttrs (s.webhookSecretFile != null) {
      "forge-${forge}-webhook-secret" = s.webhookSecretFile;
    }
    // lib.optionalAttrs (s.privateKeyFile != null) { "forge-${forge}-private-key" = s.privateKeyFile; }
  ) cfg.forges;
  credentials =
    forgeCredentials
    // lib.optionalAttrs (cfg.sshIdentityFile != null) { ssh-identity = cfg.sshIdentityFile; }
    // lib.optionalAttrs (cfg.uiTokenFile != null) { ui-token = cfg.uiTokenFile; }
    // lib.optionalAttrs (cfg.hookSecretFile != null) { hook-secret = cfg.hookSecretFile; };
  cred = name: "${credDir}/${name}";

  knownHostLine =
    h:
    let
      key =
        if h.publicKey != null then h.publicKey else lib.removeSuffix "\n" (builtins.readFile h.publicKeyFile);
    in
    "${lib.concatStringsSep "," h.hostNames} ${key}";
  knownHostsFile = pkgs.writeText "switchyard-known_hosts" (
    lib.concatMapStrings (h: knownHostLine h + "\n") (lib.attrValues cfg.knownHosts)
  );

  # What the module adds to `settings`: where the credentials appear, the known_hosts file.
  derivedSettings = lib.recursiveUpdate {
    forges = lib.mapAttrs (
      forge: s:
      lib.optionalAttrs (s.tokenFile != null) { token_file = cred "forge-${forge}-token"; }
      // lib.optionalAttrs (s.webhookSecretFile != null) {
        webhook_secret_file = cred "forge-${forge}-webhook-secret";
      }
      // lib.optionalAttrs (s.privateKeyFile != null) {
        private_key_file = cred "forge-${forge}-private-key";
      }
    ) cfg.forges;
    ssh =
      lib.optionalAttrs (cfg.sshIdentityFile != null) { identity_file = cred "ssh-identity"; }
      // lib.optionalAttrs (cfg.knownHosts != { }) { known_hosts = "${knownHostsFile}"; };
  } (
    lib.optionalAttrs (cfg.uiTokenFile != null) { ui_token_file = cred "ui-token"; }
    // lib.optionalAttrs (cfg.hookSecretFile != null) { hook_secret_file = cred "hook-secret"; }
  );
  finalSettings = lib.recursiveUpdate cfg.settings derivedSettings;
  # Empty sections the module may add (no forge secrets, no ssh) are left out of the file.
  renderedSettings = lib.filterAttrs (_: v: v != { }) finalSettings;

  settingsFile = pkgs.writeText "switchyard.yaml" (builtins.toJSON renderedSettings);
  configFile =
    if cfg.checkConfig then
      pkgs.runCommand "switchyard-checked.yaml" { nativeBuildInputs = [ cfg.package ]; } ''
        # exit 2: the config is wrong; exit 1: it is right but names files that exist only on
        # the running machine (the credentials), which is expected here.
        rc=0
        switchyard check-config ${settingsFile} || rc=$?
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
          echo "services.switchyard.settings: switchyard check-config failed (exit $rc)" >&2
          exit 1
        fi
        cp ${settingsFile} $out
      ''
    else
      settingsFile;

  listenPort = lib.toInt (lib.last (lib.splitString ":" finalSettings.listen));
  stateDirName = lib.removePrefix "/var/lib/" finalSettings.state_dir;

  # Every `*_file` key anywhere in settings, to refuse secrets written into the store.
  fileKeys =
    path: v:
    if builtins.isAttrs v then
      lib.concatLists (lib.mapAttrsToList (k: x: fileKeys (path ++ [ k ]) x) v)
    else if lib.hasSuffix "_file" (lib.last ([ "" ] ++ path)) && builtins.isString v then
      [
        {
          key = lib.concatStringsSep "." path;
          value = v;
        }
      ]
    else
      [ ];
  # Local repositories (repos[].path) are written to: commits are pinned under
  # refs/switchyard/commits/ before Nix reads them (README "Decisions").
  repoPaths = map (r: r.path) (
    lib.filter (r: builtins.isAttrs r && r ? path) (finalSettings.repos or [ ])
  );
  unknownForges = lib.filter (f: !((cfg.settings.forges or { }) ? ${f})) (lib.attrNames cfg.forges);
  storeSecrets = lib.filter (
    f: lib.hasPrefix builtins.storeDir f.value && f.key != "ssh.known_hosts"
  ) (fileKeys [ ] cfg.settings);
in
{
  options.services.switchyard = {
    enable = lib.mkEnableOption "Switchyard, the CI/CD runner for NixOS infrastructure flakes";

    package = mkOption {
      type = types.package;
      description = "The switchyard package (this flake's `packages.<system>.default`).";
    };

    settings = mkOption {
      description = ''
        The configuration file (the keys of templates/switchyard.example.yaml), rendered to YAML
        and checked with `switchyard check-config` when the system is built. Secret files are set
        with the options below, never here.
      '';
      default = { };
      type = types.submodule {
        freeformType = (pkgs.formats.yaml { }).type;
        options = {
          listen = mkOption {
            type = types.str;
            default = "127.0.0.1:8470";
            description = "Address and port the daemon listens on (webhooks, web UI).";
          };
          state_dir = mkOption {
            type = types.str;
            default = "/var/lib/switchyard";
            description = "State directory (a directory under /var/lib/, made by systemd).";
          };
        };
      };
    };

    forges = mkOption {
      type = types.attrsOf forgeSecrets;
      default = { };
      example = lib.literalExpression ''{ home.tokenFile = "/run/secrets/gitea-token"; home.webhookSecretFile = "/run/secrets/gitea-hook"; }'';
      description = "Secret files of each forge under `settings.forges` (same names).";
    };
    sshIdentityFile = mkOption {
      type = types.nullOr secretPath;
      default = null;
      description = "The deploy key (`ssh.identity_file`).";
    };
    uiTokenFile = mkOption {
      type = types.nullOr secretPath;
      default = null;
      description = "The web UI login token, at least 32 bytes (`ui_token_file`).";
    };
    hookSecretFile = mkOption {
      type = types.nullOr secretPath;
      default = null;
      description = "Shared secret of hooks/post-receive (`hook_secret_file`).";
    };

    knownHosts = mkOption {
      type = types.attrsOf knownHostType;
      default = { };
      example = lib.literalExpression ''{ octavia = { hostNames = [ "10.20.0.2" ]; publicKey = "ssh-ed25519 AAAA…"; }; }'';
      description = "Host keys of the deploy targets (`ssh.known_hosts`); a target not listed is refused.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the port of `settings.listen` in the firewall.";
    };

    checkConfig = mkOption {
      type = types.bool;
      default = true;
      description = "Run `switchyard check-config` on the rendered file when the system is built.";
    };

    user = mkOption {
      type = types.str;
      default = "switchyard";
      description = "The account the daemon runs as (created when it is `switchyard`).";
    };
    group = mkOption {
      type = types.str;
      default = "switchyard";
      description = "The daemon's group (created when it is `switchyard`).";
    };

    jailForks = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Evaluate pull requests from forks as `settings.untrusted.user` (created here) in a
        network namespace of their own. This gives the unit CAP_SETUID, CAP_SETGID and
        CAP_SYS_ADMIN and lets it create network namespaces. Without it, forks' runs fail with
        the reason (or set `settings.untrusted.evaluate = false` to plan them from the diff).
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = lib.hasPrefix "/var/lib/" finalSettings.state_dir && stateDirName != "";
        message = "services.switchyard.settings.state_dir must be a directory under /var/lib/ (systemd's StateDirectory)";
      }
      {
        assertion = storeSecrets == [ ];
        message = "services.switchyard.settings: ${
          lib.concatMapStringsSep ", " (f: "${f.key} = ${f.value}") storeSecrets
        } is in the Nix store, which every local user can read; set the services.switchyard secret options (paths outside the store) instead";
      }
      {
        assertion = lib.all (p: builtins.isString p && lib.hasPrefix "/" p) repoPaths;
        message = "services.switchyard.settings.repos: a repository path must be absolute (the config file is in the Nix store)";
      }
      {
        assertion = unknownForges == [ ];
        message = "services.switchyard.forges: ${lib.concatStringsSep ", " unknownForges} ${
          if lib.length unknownForges == 1 then "is not a forge" else "are not forges"
        } under services.switchyard.settings.forges";
      }
      {
        assertion = lib.all (h: (h.publicKey == null) != (h.publicKeyFile == null)) (
          lib.attrValues cfg.knownHosts
        );
        message = "services.switchyard.knownHosts: each host needs exactly one of publicKey and publicKeyFile";
      }
    ];

    users.users = lib.mkMerge [
      (lib.mkIf (cfg.user == "switchyard") {
        switchyard = {
          isSystemUser = true;
          group = cfg.group;
          home = finalSettings.state_dir;
          description = "Switchyard CI/CD runner";
        };
      })
      (lib.mkIf cfg.jailForks {
        ${finalSettings.untrusted.user or "switchyard-untrusted"} = {
          isSystemUser = true;
          group = "switchyard-untrusted";
          description = "Switchyard, pull requests from forks";
        };
      })
    ];
    users.groups = lib.mkMerge [
      (lib.mkIf (cfg.group == "switchyard") { switchyard = { }; })
      (lib.mkIf cfg.jailForks { switchyard-untrusted = { }; })
    ];

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ listenPort ];

    systemd.services.switchyard = {
      description = "Switchyard CI/CD runner";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [
        "network-online.target"
        "nix-daemon.socket"
      ];
      path = [
        config.nix.package
        pkgs.git
        pkgs.openssh
      ];
      environment = {
        # the runner's nix reaches the store through the daemon (it is not root)
        NIX_REMOTE = "daemon";
        HOME = finalSettings.state_dir;
        XDG_CACHE_HOME = "/var/cache/switchyard";
      };
      restartTriggers = [ configFile ];
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/switchyard serve --config ${configFile}";
        User = cfg.user;
        Group = cfg.group;
        Restart = "on-failure";
        RestartSec = 5;
        StateDirectory = stateDirName;
        StateDirectoryMode = "0700";
        CacheDirectory = "switchyard";
        CacheDirectoryMode = "0700";
        WorkingDirectory = finalSettings.state_dir;
        ReadWritePaths = repoPaths;
        LoadCredential = lib.mapAttrsToList (name: path: "${name}:${path}") credentials;
        UMask = "0077";

        # Hardening (nix/README.md lists what is left open and why).
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        LockPersonality = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        # nix raises its own stack limit (setrlimit), so @resources stays allowed
        SystemCallFilter = [ "@system-service" ];
        SystemCallErrorNumber = "EPERM";
        RestrictAddressFamilies = [
          "AF_UNIX"
          "AF_INET"
          "AF_INET6"
          "AF_NETLINK"
        ];
        CapabilityBoundingSet =
          if cfg.jailForks then
            [
              "CAP_SETUID"
              "CAP_SETGID"
              "CAP_SYS_ADMIN"
            ]
          else
            [ "" ];
        AmbientCapabilities = lib.optionals cfg.jailForks [
          "CAP_SETUID"
          "CAP_SETGID"
          "CAP_SYS_ADMIN"
        ];
        RestrictNamespaces = if cfg.jailForks then "net" else true;
      };
    };
  };
}
