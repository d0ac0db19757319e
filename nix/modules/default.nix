# The cc-ci NixOS modules: `imports = [ ./nix/modules ];` then set `services.cc-ci.*`.
#
# /var/lib/ci-warm (canonicals, snapshots, alerts, leases) is runtime cache, not source: no module
# declares its contents, and a host rebuilt from scratch re-seeds its canonicals through cold runs
# (the nightly sweep) instead of restoring them.
{
  imports = [
    ./options.nix
    ./agent.nix
    ./bridge.nix
    ./infra.nix
    ./sweep.nix
    ./docker-prune.nix
    ./relay.nix
    ./drone-runner.nix
  ];
}
