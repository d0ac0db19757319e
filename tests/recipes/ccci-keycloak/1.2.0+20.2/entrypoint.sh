#!/bin/sh
# Stand-in for keycloak: every version records in its data that it ran; it serves /health.
trap 'exit 0' TERM
echo "$APP_VERSION" >> /data/versions-that-ran
echo "$APP_VERSION" > /www/health
httpd -f -p 80 -h /www &
wait $!
