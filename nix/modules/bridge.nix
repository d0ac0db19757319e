# The bridge: PR comments and chat → Drone builds. gunicorn on a loopback port as its own
# unprivileged (dynamic) user; its tokens come as systemd credentials through CCCI_*_FILE.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkEnableOption mkOption mkIf types;
  cfg = config.services.cc-ci;
  units = import ./units.nix { inherit lib cfg; };
  python = cfg.bridge.python.withPackages (ps: [ (ps.toPythonModule cfg.package) ps.gunicorn ]);
in
{
  options.services.cc-ci.bridge = {
    enable = mkEnableOption "the cc-ci bridge (PR comments and chat → Drone builds)";

    python = mkOption {
      type = types.package;
      default = pkgs.python3;
      defaultText = lib.literalExpression "pkgs.python3";
      description = "The Python the bridge's gunicorn runs on (the package's own).";
    };

    address = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = "Where gunicorn listens: a loopback address behind the reverse proxy.";
    };

    port = mkOption {
      type = types.port;
      default = 8080;
      description = "The bridge's port.";
    };

    workers = mkOption {
      type = types.ints.positive;
      default = 2;
      description = "gunicorn workers (they share the bridge's SQLite store).";
    };

    environment = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = { CCCI_DRONE_SERVER = "https://drone.example.org"; CCCI_DRONE_REPO = "coop-cloud/ci"; };
      description = "The bridge's settings (README, The bridge).";
    };

    credentials = mkOption {
      type = types.attrsOf types.path;
      default = { };
      example = { DRONE_TOKEN = "/run/keys/drone-token"; WEBHOOK_SECRET = "/run/keys/webhook"; };
      description = "The bridge's secrets by setting name, read through CCCI_<NAME>_FILE.";
    };
  };

  config = mkIf cfg.bridge.enable {
    systemd.services.cc-ci-bridge = {
      description = "cc-ci bridge";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      environment = {
        CCCI_BRIDGE_STATE_DIR = "/var/lib/ci-bridge";
      } // cfg.bridge.environment // units.credentialFiles cfg.bridge.credentials;
      serviceConfig = units.hardening // {
        ExecStart = lib.escapeShellArgs [
          "${python}/bin/gunicorn"
          "--workers" (toString cfg.bridge.workers)
          "--bind" "${cfg.bridge.address}:${toString cfg.bridge.port}"
          "ccci_bridge.app:create_app()"
        ];
        DynamicUser = true;
        StateDirectory = "ci-bridge";
        LoadCredential = units.loadCredential cfg.bridge.credentials;
        Restart = "on-failure";
        CapabilityBoundingSet = [ "" ];
        PrivateDevices = true;
      };
    };
  };
}
