host: {
  rel = ./a/b.nix; up = ../x; dot = ./.; dotdot = ../.; bare = a/b; abs = /etc/hosts;
  home = ~/file; search = <nixpkgs>; search2 = <nixpkgs/lib/default.nix>;
  interp = ./hosts/${host}; interp2 = ./hosts/${host}/default.nix; interp3 = ./a${host}b;
  interp4 = /abs/${host}; interp5 = ~/${host}; interp6 = a/${host}.nix;
  plus = ./. + "/${host}.nix"; str = "${./script.sh}";
  weird = ./a-b_c+d.e/f; num = 1/2/3;
}
