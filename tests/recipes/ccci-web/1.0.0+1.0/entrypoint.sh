#!/bin/sh
# PID 1 busybox ignores SIGTERM: trap it so stops and updates take no grace period.
trap 'exit 0' TERM
echo "$APP_VERSION" > /www/version
httpd -f -p 80 -h /www &
wait $!
