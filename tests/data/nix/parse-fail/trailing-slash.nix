{ a = ./dir/; }
