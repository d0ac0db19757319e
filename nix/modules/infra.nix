# The live-warm infra: warm-keycloak.service and deploy-proxy.service, oneshots running
# `cc-ci reconcile keycloak|traefik` (gate, health gate, rollback), at boot and on every activation.
{ config, lib, pkgs, ... }:

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
    # A reconcile is a deploy: a switch must not stop or restart one half-way. The activation
    # script below starts it again once the switch is done.
    restartIfChanged = false;
    path = cfg.path;
    environment = units.environment // units.credentialFiles cfg.credentials;
    serviceConfig = units.hardening // {
      Type = "oneshot";
      ExecStart = command;
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

    # Run again on every activation (`nixos-rebuild switch`), queued, never waited for. At boot
    # systemd is not up yet when activation runs: multi-user.target starts them then.
    system.activationScripts.cc-ci-reconcile = ''
      if [ -d /run/systemd/system ] && [ "''${NIXOS_ACTION:-switch}" != dry-activate ]; then
        ${pkgs.systemd}/bin/systemctl start --no-block deploy-proxy.service warm-keycloak.service || true
      fi
    '';
  };
}
