# Evaluate nix/ offline: a stub of the few nixpkgs `lib` functions and packages the modules use,
# and a small fixpoint standing in for the NixOS module system (options' defaults, `overrides`
# on top, `mkIf` resolved). Not nixpkgs: it proves what the modules declare and what the units
# they make would run, not that NixOS accepts them. tests/deploy/test_nix.py reads its JSON.
{ overrides ? { } }:

let
  inherit (builtins) attrNames concatMap filter foldl' isAttrs listToAttrs mapAttrs;

  recursiveUpdate = lhs: rhs:
    lhs // mapAttrs (n: v:
      if isAttrs v && !(v ? _type) && isAttrs (lhs.${n} or null) then recursiveUpdate lhs.${n} v
      else v) rhs;
  mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
  type = name: { _type = "type"; inherit name; };

  lib = {
    inherit recursiveUpdate mapAttrsToList concatMap;
    mkOption = attrs: attrs // { _type = "option"; };
    mkEnableOption = what: {
      _type = "option";
      type = type "bool";
      default = false;
      description = "Whether to enable ${what}.";
      enable = true;
    };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    types = {
      str = type "str";
      path = type "path";
      package = type "package";
      port = type "port";
      int = type "int";
      bool = type "bool";
      enum = values: type "enum";
      attrsOf = t: type "attrsOf ${t.name}";
      listOf = t: type "listOf ${t.name}";
      ints = { between = lo: hi: type "int ${toString lo}-${toString hi}"; positive = type "int >0"; };
    };
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    escapeShellArgs = args: builtins.concatStringsSep " " (map (a: "'${a}'") args);
    mapAttrs' = f: set: listToAttrs (mapAttrsToList f set);
    nameValuePair = name: value: { inherit name value; };
    any = builtins.any;
    unique = foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];
    cleanSource = src: "<source>";
    licenses.agpl3Plus = "AGPL-3.0-or-later";
  };

  store = name: { outPath = "/nix/store/${name}"; pname = name; };
  pythonPackages = {
    # As nixpkgs' callPackage: the function gets the arguments it names.
    callPackage = file: args:
      let f = import file; in
      f (builtins.intersectAttrs (builtins.functionArgs f) (pythonPackages // { inherit lib; }) // args);
    buildPythonApplication = attrs: attrs // store "cc-ci";
    toPythonModule = p: p;
  } // listToAttrs (map (n: { name = n; value = store n; }) [
    "hatchling" "pydantic-settings" "flask" "gunicorn" "docker" "pyyaml" "requests"
    "python-keycloak" "pytest"
  ]);
  pkgs = {
    python3Packages = pythonPackages;
    python3 = store "python3" // { withPackages = f: store "python3-env"; };
    gnutar = store "gnutar";
    systemd = store "systemd";
    git = store "git";
    docker-client = store "docker-client";
    drone-runner-docker = store "drone-runner-docker";
  };

  modules = map (file: import file { inherit config lib pkgs; })
    (import ../../nix/modules/default.nix).imports;
  options = foldl' recursiveUpdate { } (map (m: m.options or { }) modules);

  isOption = v: (v._type or null) == "option";
  defaultsOf = tree: mapAttrs (n: v:
    if isOption v then (if v ? default then v.default else throw "option ${n} has no default")
    else defaultsOf v) tree;
  flatten = prefix: tree: concatMap (n:
    let v = tree.${n}; path = prefix ++ [ n ]; in
    if isOption v then [ {
      inherit path;
      type = v.type.name or null;
      description = v.description or null;
      default = v ? default;
      enable = v.enable or false;
    } ] else flatten path v) (attrNames tree);

  config = recursiveUpdate (defaultsOf options) overrides // { networking.hostName = "ci1"; };

  resolve = v:
    if (v._type or null) == "if" then (if v.condition then resolve v.content else { })
    else if isAttrs v && !(v ? outPath) then mapAttrs (_: resolve) v
    else v;
  made = foldl' recursiveUpdate { } (map (m: resolve (m.config or { })) modules);
  unit = s: {
    execStart = s.serviceConfig.ExecStart;
    restartIfChanged = s.restartIfChanged or true;
    wantedBy = s.wantedBy or [ ];
    environment = s.environment or { };
    type = s.serviceConfig.Type or "simple";
    remainAfterExit = s.serviceConfig.RemainAfterExit or false;
    umask = s.serviceConfig.UMask or null;
  };
in
{
  options = flatten [ ] options;
  services = mapAttrs (_: unit) (made.systemd.services or { });
  timers = mapAttrs (_: t: t.timerConfig) (made.systemd.timers or { });
  activation = attrNames (made.system.activationScripts or { });
  tmpfiles = made.systemd.tmpfiles.rules or [ ];
  package = let p = config.services.cc-ci.package; in {
    inherit (p) pname version;
    dependencies = map (d: d.pname) p.dependencies;
  };
}
