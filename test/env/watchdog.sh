#!/usr/bin/env bash
# Ends a test environment whose owner died without stopping it (a killed test run, say):
# waits for OWNER_PID to exit, then stops the server process groups listed in ROOT/pids and
# removes ROOT. A normal stop kills this watchdog first.
owner=$1 root=$2
while kill -0 "$owner" 2>/dev/null; do sleep 1; done
[ -f "$root/pids" ] || exit 0
for pid in $(cat "$root/pids"); do kill -TERM -- "-$pid" 2>/dev/null; done
sleep 5
for pid in $(cat "$root/pids"); do kill -KILL -- "-$pid" 2>/dev/null; done
rm -rf "$root"
