# jmbaur-style: hosts generated from a directory listing.
{
  inputs.nixpkgs.url = "github:nixos/nixpkgs/nixos-unstable";
  outputs = inputs: {
    nixosConfigurations = import ./nixos-configurations inputs;
    overlays.default = final: prev: {
      myTool = final.callPackage ./pkgs/my-tool { };
      inherit (prev) hello;
    };
  };
}
