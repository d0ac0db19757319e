# The live-warm infra: warm-keycloak.service and deploy-proxy.service, oneshots running
# `cc-ci reconcile keycloak|traefik` (gate, health gate, rollback), at boot and on every activation.
#
# Every activation: a oneshot without RemainAfterExit is inactive once it ran, and
# switch-to-configuration starts the active targets again, which starts the inactive units they
# want: multi-user.target runs both reconciles after each `nixos-rebuild switch`, as at boot.
{ config, lib, ... }:

let
  inherit (lib) mkEnableOption mkIf;
  cfg = config.services.cc-ci;
  units = import ./units.nix { inherit lib cfg; };
  # Each unit's command is spelled out where it is used, so tests/deploy reads it from this file.
  reconcile = description: command: {
    inherit description;
    wantedBy = [ "multi-user.target" ];
    after = [ "docker.service" "cc-ci-agent.service" "network-online.target" ];
    wants = [ "network-online.target" ];
    requires = [ "cc-ci-agent.service" ];
    # A reconcile is a deploy: a switch must not stop or restart one half-way.
    restartIfChanged = false;
    path = cfg.path;
    environment = units.environment // units.credentialFiles cfg.credentials;
    serviceConfig = units.hardening // {
      Type = "oneshot";
      RemainAfterExit = false; # inactive once done: the next activation runs it again
      ExecStart = command;
      UMask = "0007"; # the plugin image's user shares the runs, apps and abra dirs (group)
      LoadCredential = units.loadCredential cfg.credentials;
      ReadWritePaths = [ (toString cfg.runsDir) (toString cfg.appsDir) (toString cfg.abraDir) ];
    };
  };
in
{
  options.services.cc-ci.infra.enable =
    mkEnableOption "warm-keycloak.service and deploy-proxy.service (cc-ci reconcile)";

  config = mkIf cfg.infra.enable {
    systemd.services.warm-keycloak = reconcile "cc-ci: reconcile the live-warm keycloak"
      "${cfg.package}/bin/cc-ci reconcile keycloak";
    systemd.services.deploy-proxy = reconcile "cc-ci: reconcile the live-warm traefik"
      "${cfg.package}/bin/cc-ci reconcile traefik";
  };
}
