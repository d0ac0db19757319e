# `nix-build nix` builds the package; NixOS hosts import ./modules instead.
{ pkgs ? import <nixpkgs> { } }:
pkgs.python3Packages.callPackage ./package.nix { }
