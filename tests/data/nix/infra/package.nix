{ lib
, stdenv
, fetchFromGitHub
, rustPlatform
, pkg-config
, openssl
, withTls ? true
, version ? "1.2.3"
}:

rustPlatform.buildRustPackage rec {
  pname = "my-tool";
  inherit version;

  src = fetchFromGitHub {
    owner = "example";
    repo = pname;
    rev = "v${version}";
    hash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  };

  cargoHash = "sha256-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=";

  nativeBuildInputs = [ pkg-config ];
  buildInputs = lib.optional withTls openssl;

  postPatch = ''
    substituteInPlace src/main.rs --replace '"/usr/share' '"${placeholder "out"}/share'
    cp ${./config.toml} config.toml
  '';

  doCheck = stdenv.hostPlatform == stdenv.buildPlatform && !stdenv.isDarwin;

  meta = with lib; {
    description = "A tool";
    license = licenses.mit;
    maintainers = [ maintainers.example or null ];
    platforms = platforms.linux;
    broken = versionOlder version "1.0";
  };
}
