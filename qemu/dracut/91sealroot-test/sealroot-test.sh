#!/bin/bash
# sealroot-test pcrs|check|stamp|succeeded|exited: see module-setup.sh. Lines the host harness reads start with "@@ ".
stamp() { read -r up _ </proc/uptime; echo "@@ T $1 $up" >/dev/console; }
say() { echo "@@ $*" >/dev/console; }
# When the kernel ran /init, from its own log line (init/main.c: "Run /init as init process").
kernel_runs_init() {
  local line
  line=$(dmesg | grep -m1 'Run /init as init process') || return 0
  line=${line#*[}; line=${line%%]*}
  echo "@@ T kernel-runs-init ${line// /}" >/dev/console
}
case $1 in
  stamp)
    stamp "$2"
    # Issue 16: under systemd, sealroot.service is ordered after the TPM (tpm2.target or the device unit) and the
    # TPM is up when it starts.
    if [ "$2" = sealroot-start ] && [ -d /run/systemd/system ]; then
      after=$(systemctl show -p After --value sealroot.service | tr ' ' '\n' | grep -E '^(tpm2\.target|dev-tpm.*\.device)$' | grep -m 1 .)
      say "TPM-UNIT ${after:-none} $(systemctl show -p ActiveState --value "${after:-none}" 2>/dev/null)"
    fi
    ;;
  succeeded)
    # ExecStartPost of sealroot.service: runs only when sealroot exited 0.
    stamp sealroot-end
    say "SEALROOT-EXIT 0"
    ;;
  exited)
    # ExecStopPost of sealroot.service (systemd passes $SERVICE_RESULT and $EXIT_STATUS); a failure only.
    if [ "$SERVICE_RESULT" != success ]; then
      stamp sealroot-end
      say "SEALROOT-EXIT ${EXIT_STATUS:-unknown}"
      say "STOPPED sealroot.service: $SERVICE_RESULT (its FailureAction=poweroff-force follows)"
      say "END"
    fi
    ;;
  pcrs)
    kernel_runs_init
    stamp init
    pcr=trusted
    for arg in $(cat /proc/cmdline); do case $arg in test.pcr=*) pcr=${arg#*=} ;; esac; done
    n=0; while [ ! -e /dev/tpmrm0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    for cmd in /etc/sealroot-test/extend-"$pcr"-*.cmd; do
      exec 3<>/dev/tpmrm0 || exit 1
      cat "$cmd" >&3
      rc=$(dd bs=4096 count=1 <&3 2>/dev/null | od -An -tx1 -j6 -N4 | tr -d ' \n')
      exec 3>&-
      [ "$rc" = 00000000 ] || { say "WARN $cmd: TPM response code 0x$rc"; exit 1; }
    done
    say "PCRS $pcr"
    ;;
  check)
    . /etc/sealroot-test/unseal.sh
    # The approvals are on the physical root (boot.toml's [tpm] state), which sealroot bound at /sysroot/sysroot.
    tpm_state=/sysroot/sysroot/sealroot/tpm
    if [ ! -e "$tpm_state/approvals.json" ]; then say "CHECK second-unseal not run: no $tpm_state/approvals.json"
    elif second_unseal; then say "CHECK second-unseal SUCCEEDED"; else say "CHECK second-unseal refused"; fi
    stamp switch-root
    ;;
esac
