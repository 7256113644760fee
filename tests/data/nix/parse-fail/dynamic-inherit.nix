let x = "a"; in { inherit "${x}"; }
