#!/bin/sh
# Only the literal exports below are read by the deployer; nothing here is executed.
export ENTRYPOINT_VERSION=v2
