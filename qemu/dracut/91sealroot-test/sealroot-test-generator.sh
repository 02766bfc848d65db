#!/bin/sh
# Test-only systemd generator: test.sealroot-timeout=N on the kernel command line shortens sealroot.service's start
# timeout (the start-timeout scenario: the TPM stalls, systemd's SIGTERM must lead through sealroot's failure path
# to the unit's power-off). $1: the generator's normal-priority output directory.
t=
for arg in $(cat /proc/cmdline); do
    case $arg in test.sealroot-timeout=*) t=${arg#*=} ;; esac
done
[ -n "$t" ] || exit 0
mkdir -p "$1/sealroot.service.d"
printf '[Service]\nTimeoutStartSec=%s\n' "$t" >"$1/sealroot.service.d/50-test-timeout.conf"
