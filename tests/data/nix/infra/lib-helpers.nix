{ lib }:
rec {
  # Every .nix file and directory in `dir`, as an attrset of paths.
  importDir = dir:
    let
      entries = builtins.readDir dir;
      isNix = n: t: t == "directory" || (t == "regular" && lib.hasSuffix ".nix" n && n != "default.nix");
    in
    lib.mapAttrs' (n: _: lib.nameValuePair (lib.removeSuffix ".nix" n) (dir + "/${n}"))
      (lib.filterAttrs isNix entries);

  mkHosts = { nixpkgs, hostsDir ? ./hosts, extraModules ? [ ], ... }@args:
    builtins.mapAttrs (name: path: nixpkgs.lib.nixosSystem {
      modules = [ path ] ++ extraModules;
      specialArgs = removeAttrs args [ "nixpkgs" ] // { hostName = name; };
    }) (importDir hostsDir);

  fib = n: if n < 2 then n else fib (n - 1) + fib (n - 2);
  compose = f: g: x: f (g x);
  pipe' = builtins.foldl' (x: f: f x);
  pos = __curPos;
  ratio = 1.5 * 2 / 3.0 - -1;
  flags = { a ? 1, b ? a + 1, ... }: a * b;
  isOld = v: builtins.compareVersions v "2.0" < 0 || v == "unstable";
  legacy = let { x = 1; body = x + 1; };
  search = <nixpkgs/lib>;
  home = ~/.config/nixpkgs/config.nix;
  absolute = /etc/nixos/configuration.nix;
  url = https://example.org/archive.tar.gz;
  attrCheck = s: s ? a.b.${"c"} && !(s ? d);
  orDefault = s: s.a.b or s.c or null;
  quoted = { "with space" = 1; "${"dyn" + "amic"}" = 2; inherit (builtins) map filter; };
  merged = { a.b = 1; a.c = 2; a = { d = 3; }; };
}
