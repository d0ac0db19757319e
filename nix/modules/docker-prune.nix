# ci-docker-prune: `cc-ci prune` on a timer. It acts only when / is at or above the threshold and
# no run is in flight: stopped containers, dangling images, build cache older than 24 h; never
# --all, never a volume.
{ config, lib, ... }:

let
  inherit (lib) mkEnableOption mkOption mkIf types;
  cfg = config.services.cc-ci;
  units = import ./units.nix { inherit lib cfg; };
in
{
  options.services.cc-ci.prune = {
    enable = mkEnableOption "ci-docker-prune.service and its timer (cc-ci prune)";

    threshold = mkOption {
      type = types.ints.between 0 100;
      default = 80;
      description = "Percent of / used at or above which the prune acts (CCCI_PRUNE_THRESHOLD).";
    };

    onCalendar = mkOption {
      type = types.str;
      default = "hourly";
      description = "When the prune looks (systemd OnCalendar).";
    };
  };

  config = mkIf cfg.prune.enable {
    systemd.services.ci-docker-prune = {
      description = "cc-ci: free disk under pressure (dangling Docker objects only)";
      after = [ "docker.service" "cc-ci-agent.service" ];
      path = cfg.path;
      environment = {
        CCCI_AGENT_SOCKET = toString cfg.agentSocket;
        CCCI_PRUNE_THRESHOLD = toString cfg.prune.threshold;
      };
      serviceConfig = units.hardening // {
        Type = "oneshot";
        ExecStart = "${cfg.package}/bin/cc-ci prune";
      };
    };
    systemd.timers.ci-docker-prune = {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.prune.onCalendar;
        Persistent = true;
      };
    };
  };
}
