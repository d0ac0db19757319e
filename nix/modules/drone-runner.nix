# The Drone runner that starts the plugin image: its capacity is services.cc-ci.maxTests
# (DRONE_RUNNER_CAPACITY = CCCI_MAX_TESTS), so Drone never starts more runs than the agent leases.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkEnableOption mkOption mkIf types;
  cfg = config.services.cc-ci;
in
{
  options.services.cc-ci.droneRunner = {
    enable = mkEnableOption "drone-runner-docker with capacity services.cc-ci.maxTests";

    package = mkOption {
      type = types.package;
      default = pkgs.drone-runner-docker;
      defaultText = lib.literalExpression "pkgs.drone-runner-docker";
      description = "The Drone docker runner.";
    };

    environmentFile = mkOption {
      type = types.path;
      example = "/run/keys/drone-runner.env";
      description = "DRONE_RPC_HOST, DRONE_RPC_PROTO and DRONE_RPC_SECRET (kept out of the store).";
    };
  };

  config = mkIf cfg.droneRunner.enable {
    systemd.services.drone-runner-docker = {
      description = "Drone docker runner (cc-ci)";
      wantedBy = [ "multi-user.target" ];
      after = [ "docker.service" "network-online.target" ];
      wants = [ "network-online.target" ];
      environment = {
        DRONE_RUNNER_CAPACITY = toString cfg.maxTests;
        DRONE_RUNNER_NAME = config.networking.hostName;
      };
      serviceConfig = {
        ExecStart = "${cfg.droneRunner.package}/bin/drone-runner-docker";
        EnvironmentFile = cfg.droneRunner.environmentFile;
        SupplementaryGroups = [ "docker" ];
        DynamicUser = true;
        Restart = "on-failure";
      };
    };
  };
}
