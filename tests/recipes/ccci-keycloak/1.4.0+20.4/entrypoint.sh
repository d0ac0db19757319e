#!/bin/sh
# A release that migrates the data at once and then never becomes healthy.
trap 'exit 0' TERM
echo "$APP_VERSION" >> /data/versions-that-ran
echo "migrated by $APP_VERSION" > /data/written-by-broken
sleep 600 &
wait $!
