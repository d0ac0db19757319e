# The nightly sweep: nightly-sweep.timer (03:00, Persistent) runs `cc-ci sweep` on the host: infra
# forward, a cold run of every enrolled recipe (the only thing that advances canonicals), clean up.
{ config, lib, ... }:

let
  inherit (lib) mkEnableOption mkOption mkIf types;
  cfg = config.services.cc-ci;
  units = import ./units.nix { inherit lib cfg; };
in
{
  options.services.cc-ci.sweep = {
    enable = mkEnableOption "nightly-sweep.service and nightly-sweep.timer (cc-ci sweep)";

    onCalendar = mkOption {
      type = types.str;
      default = "*-*-* 03:00:00";
      description = "When the sweep runs (systemd OnCalendar); a missed one runs at boot.";
    };
  };

  config = mkIf cfg.sweep.enable {
    systemd.services.nightly-sweep = {
      description = "cc-ci nightly sweep";
      after = [ "docker.service" "cc-ci-agent.service" "network-online.target" ];
      wants = [ "network-online.target" ];
      requires = [ "cc-ci-agent.service" ];
      restartIfChanged = false;
      path = cfg.path;
      environment = units.environment // units.credentialFiles cfg.credentials;
      serviceConfig = units.hardening // {
        Type = "oneshot";
        ExecStart = "${cfg.package}/bin/cc-ci sweep";
        UMask = "0007"; # the plugin image's user shares the runs, apps and abra dirs (group)
        LoadCredential = units.loadCredential cfg.credentials;
        ReadWritePaths = [ (toString cfg.runsDir) (toString cfg.appsDir) (toString cfg.abraDir) ];
      };
    };
    systemd.timers.nightly-sweep = {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.sweep.onCalendar;
        Persistent = true;
      };
    };
  };
}
