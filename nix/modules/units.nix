# Helpers the unit modules share (not a module): the host environment and credentials.
{ lib, cfg }:

{
  # The CCCI_* settings every host unit reads.
  environment = {
    CCCI_DOMAIN = cfg.domain;
    CCCI_AGENT_SOCKET = toString cfg.agentSocket;
    CCCI_DEPLOYER = cfg.deployer;
    CCCI_ABRA_DIR = toString cfg.abraDir;
    CCCI_RECIPES_DIR = toString cfg.recipesDir;
    CCCI_TESTS_DIR = toString cfg.testsDir;
    CCCI_RUNS_DIR = toString cfg.runsDir;
    CCCI_APPS_DIR = toString cfg.appsDir;
  } // cfg.environment;

  # LoadCredential= lines and the CCCI_<NAME>_FILE variables that point at them (%d: the
  # unit's credentials directory).
  loadCredential = credentials: lib.mapAttrsToList (name: file: "${name}:${toString file}") credentials;
  credentialFiles = credentials: lib.mapAttrs' (name: _: lib.nameValuePair "CCCI_${name}_FILE" "%d/${name}") credentials;

  # Hardening every root unit keeps; each adds the paths it writes.
  hardening = {
    NoNewPrivileges = true;
    PrivateTmp = true;
    ProtectHome = true;
    ProtectSystem = "strict";
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    SystemCallArchitectures = "native";
    RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
    UMask = "0077";
  };
}
