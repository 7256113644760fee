{ a = { or = 1; }.or; b = x: x.or or 2; "if" = 3; c = { inherit ({ "in" = 1; }) "in"; }; }
