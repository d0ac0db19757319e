# The alert relay: ccci-relay.timer runs `cc-ci relay` every few minutes as an unprivileged member
# of the agent's group; the Matrix token (or the webhook URL) comes as a systemd credential.
{ config, lib, ... }:

let
  inherit (lib) mkEnableOption mkOption mkIf types;
  cfg = config.services.cc-ci;
  units = import ./units.nix { inherit lib cfg; };
in
{
  options.services.cc-ci.relay = {
    enable = mkEnableOption "ccci-relay.service and ccci-relay.timer (cc-ci relay)";

    interval = mkOption {
      type = types.str;
      default = "5min";
      description = "Time between two relay passes (systemd OnUnitActiveSec).";
    };

    environment = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        CCCI_MATRIX_HOMESERVER = "https://matrix.example.org";
        CCCI_MATRIX_ROOM = "!ops:example.org";
      };
      description = "The relay's settings (README, Alert relay).";
    };

    credentials = mkOption {
      type = types.attrsOf types.path;
      default = { };
      example = { MATRIX_TOKEN = "/run/keys/matrix-token"; };
      description = "The relay's secrets by setting name (MATRIX_TOKEN, ALERT_WEBHOOK_URL).";
    };
  };

  config = mkIf cfg.relay.enable {
    users.users.ci-relay = {
      isSystemUser = true;
      group = cfg.socketGroup;  # the agent checks the peer's group
    };
    systemd.services.ccci-relay = {
      description = "cc-ci: deliver the agent's alerts";
      after = [ "cc-ci-agent.service" "network-online.target" ];
      wants = [ "network-online.target" ];
      environment = { CCCI_AGENT_SOCKET = toString cfg.agentSocket; }
        // cfg.relay.environment // units.credentialFiles cfg.relay.credentials;
      serviceConfig = units.hardening // {
        Type = "oneshot";
        User = "ci-relay";
        Group = cfg.socketGroup;
        ExecStart = "${cfg.package}/bin/cc-ci relay";
        LoadCredential = units.loadCredential cfg.relay.credentials;
      };
    };
    systemd.timers.ccci-relay = {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnBootSec = "2min";
        OnUnitActiveSec = cfg.relay.interval;
      };
    };
  };
}
