let
  a = "x
y";
  b = ''
    line1
    line2
  '';
in [ a b ]
