#!/bin/sh
export TUNING_VERSION=v1
