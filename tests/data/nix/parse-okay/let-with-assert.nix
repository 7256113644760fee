let
  a = 1;
  inherit (builtins) map toString;
  b.c = a;
  b.d = 2;
  f = x: with x; y;
in
assert a == 1;
with b;
if c > 0 then let { body = map toString [ c d ]; } else throw "no"
