# cc-ci as a Nix package: one Python application, the `cc-ci` command, every extra a host needs.
#
#   pkgs.python3Packages.callPackage ./package.nix { }
#
# `extras` picks the optional dependencies (pyproject.toml): the host needs the agent's and the
# plugin's (the nightly sweep performs runs on the host), the bridge host the bridge's.
{
  lib,
  buildPythonApplication,
  hatchling,
  pydantic-settings,
  flask,
  gunicorn,
  docker,
  pyyaml,
  requests,
  python-keycloak,
  pytest,
  extras ? [ "agent" "plugin" "bridge" ],
}:

let
  pyproject = builtins.fromTOML (builtins.readFile ../pyproject.toml);
  optional = {
    agent = [ flask gunicorn docker pyyaml requests ];
    plugin = [ docker pyyaml requests python-keycloak pytest ];
    bridge = [ flask gunicorn requests ];
  };
  version = builtins.head (
    builtins.match ".*__version__ = \"([^\"]+)\".*" (builtins.readFile ../core/ccci_core/__init__.py)
  );
in
buildPythonApplication {
  pname = pyproject.project.name;
  inherit version;
  pyproject = true;
  src = lib.cleanSource ../.;

  build-system = [ hatchling ];
  dependencies = [ pydantic-settings ] ++ lib.unique (lib.concatMap (e: optional.${e}) extras);

  # The suite needs a Docker engine in swarm mode: it runs in CI (.ci/run), not in the sandbox.
  doCheck = false;
  pythonImportsCheck = [ "ccci_core" ];

  meta = {
    description = pyproject.project.description;
    license = lib.licenses.agpl3Plus;
    mainProgram = "cc-ci";
  };
}
