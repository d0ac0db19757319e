# The host agent: root, owns /var/lib/ci-warm, serves its own Unix socket (mode 0660, group
# services.cc-ci.socketGroup) and checks each peer's SO_PEERCRED and SO_PEERGROUPS (primary or
# supplementary member of the group), so no socket unit stands between.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkEnableOption mkOption mkIf types;
  cfg = config.services.cc-ci;
  units = import ./units.nix { inherit lib cfg; };
in
{
  options.services.cc-ci.agent = {
    enable = mkEnableOption "the cc-ci host agent (canonicals, snapshots, alerts, leases)";

    workers = mkOption {
      type = types.ints.positive;
      default = 2;
      description = "gunicorn workers of the agent (--workers).";
    };

    threads = mkOption {
      type = types.ints.between 1 256;
      default = 8;
      description = "Requests each worker serves at once (CCCI_AGENT_THREADS).";
    };

    volumesDir = mkOption {
      type = types.path;
      default = "/var/lib/docker/volumes";
      description = "Where the engine keeps volumes: snapshots and restores write there.";
    };
  };

  config = mkIf cfg.agent.enable {
    systemd.services.cc-ci-agent = {
      description = "cc-ci host agent";
      wantedBy = [ "multi-user.target" ];
      after = [ "docker.service" ];
      requires = [ "docker.service" ];
      path = cfg.path;
      environment = units.environment // {
        CCCI_STATE_DIR = "/var/lib/ci-warm";
        CCCI_SOCKET_GROUP = cfg.socketGroup;
        CCCI_MAX_TESTS = toString cfg.maxTests;
        CCCI_AGENT_THREADS = toString cfg.agent.threads;
        CCCI_TAR = "${pkgs.gnutar}/bin/tar";
      };
      serviceConfig = units.hardening // {
        ExecStart = "${cfg.package}/bin/cc-ci agent serve --workers ${toString cfg.agent.workers}";
        Restart = "on-failure";
        # The state is cache, not source: systemd creates the directory, nothing declares its
        # contents (a rebuilt host re-seeds canonicals through cold runs).
        StateDirectory = "ci-warm";
        StateDirectoryMode = "0750";
        RuntimeDirectory = "ci-warm";
        RuntimeDirectoryMode = "0755";
        ReadWritePaths = [ (toString cfg.agent.volumesDir) ];
        # tar keeps owners, modes, times, ACLs and every xattr of the volumes' files
        # (--xattrs-include=*): security.capability needs SETFCAP, trusted.* needs SYS_ADMIN.
        CapabilityBoundingSet = [
          "CAP_CHOWN" "CAP_DAC_OVERRIDE" "CAP_DAC_READ_SEARCH" "CAP_FOWNER" "CAP_FSETID" "CAP_MKNOD"
          "CAP_SETFCAP" "CAP_SYS_ADMIN"
        ];
      };
    };
  };
}
