# What every cc-ci unit shares: the package, the host's settings (CCCI_*), the ci-warm group.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;
  cfg = config.services.cc-ci;
in
{
  options.services.cc-ci = {
    package = mkOption {
      type = types.package;
      default = pkgs.python3Packages.callPackage ../package.nix { };
      defaultText = lib.literalExpression "pkgs.python3Packages.callPackage ./nix/package.nix { }";
      description = "The cc-ci package whose `cc-ci` command every unit runs.";
    };

    domain = mkOption {
      type = types.str;
      default = "ci.commoninternet.net";
      description = "Base domain of every app (CCCI_DOMAIN).";
    };

    agentSocket = mkOption {
      type = types.path;
      default = "/run/ci-warm/agent.sock";
      description = "The host agent's Unix socket (CCCI_AGENT_SOCKET).";
    };

    socketGroup = mkOption {
      type = types.str;
      default = "ci-warm";
      description = "Group allowed on the agent's socket (CCCI_SOCKET_GROUP); the module creates it.";
    };

    maxTests = mkOption {
      type = types.ints.between 1 64;
      default = 1;
      description = "Live runs at most (CCCI_MAX_TESTS); also the Drone runner's capacity.";
    };

    deployer = mkOption {
      type = types.enum [ "abra" "swarm" ];
      default = "abra";
      description = "How recipes are deployed (CCCI_DEPLOYER): abra in production.";
    };

    abraDir = mkOption {
      type = types.path;
      default = "/var/lib/cc-ci/abra";
      description = "The abra directory runs and reconciles use (CCCI_ABRA_DIR).";
    };

    recipesDir = mkOption {
      type = types.path;
      default = "/var/lib/cc-ci/abra/recipes";
      description = "Recipe git repositories, one folder per recipe (CCCI_RECIPES_DIR).";
    };

    testsDir = mkOption {
      type = types.path;
      default = "/var/lib/cc-ci/ci/tests";
      description = ''
        The CI repository's tests/ (CCCI_TESTS_DIR): <recipe>/recipe_meta.py and the recipes'
        own tests, which the nightly sweep reads on the host.
      '';
    };

    runsDir = mkOption {
      type = types.path;
      default = "/var/lib/ci-runs";
      description = "Per-run scratch (CCCI_RUNS_DIR), shared with the plugin image's runs.";
    };

    appsDir = mkOption {
      type = types.path;
      default = "/var/lib/ci-apps";
      description = "The swarm deployer's app env files (CCCI_APPS_DIR).";
    };

    pluginUid = mkOption {
      type = types.int;
      default = 10001;
      description = ''
        The uid the plugin image runs as (its PLUGIN_UID build argument): owner of the runs and
        apps directories, which the plugin's runs and the host's sweep both write.
      '';
    };

    path = mkOption {
      type = types.listOf types.package;
      default = [ pkgs.git pkgs.docker-client ];
      defaultText = lib.literalExpression "[ pkgs.git pkgs.docker-client ]";
      description = "Programs on the PATH of every unit (git for recipes; abra if you deploy with it).";
    };

    environment = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = { CCCI_KEYCLOAK_URL = "https://warm-keycloak.ci.commoninternet.net"; };
      description = "More CCCI_* settings for every host unit (README, Configuration).";
    };

    credentials = mkOption {
      type = types.attrsOf types.path;
      default = { };
      example = { KEYCLOAK_ADMIN_PASSWORD = "/run/keys/keycloak-admin"; };
      description = ''
        Secrets of the host units by setting name: each is loaded with LoadCredential and read
        through CCCI_<NAME>_FILE, so it never sits in the unit's environment or the Nix store.
      '';
    };
  };

  config = lib.mkIf (lib.any (unit: cfg.${unit}.enable) [
    "agent" "bridge" "infra" "sweep" "prune" "relay" "droneRunner"
  ]) {
    users.groups.${cfg.socketGroup} = { };
    # Written by the host's units (root) and by the plugin image's user (pluginUid, the owner; in
    # socketGroup): setgid directories of that group, and the writers' umask 0007.
    systemd.tmpfiles.rules = map (dir: "d ${toString dir} 2770 ${toString cfg.pluginUid} ${cfg.socketGroup} -") [
      cfg.runsDir
      cfg.appsDir
      cfg.abraDir
    ];
  };
}
