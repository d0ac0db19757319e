#!/bin/sh
export PROXY_TOML_VERSION=v4
