#!/bin/sh
# dracut pre-pivot hook (shell flow, no systemd): the physical root is mounted at $NEWROOT; sealroot replaces it
# with the verified composefs root. Any failure stops the machine without a shell: dracut's `die` would end in its
# emergency shell unless the command line says rd.shell=0, and the command line is not sealroot's to trust.
# rd.emergency=reboot|halt is honoured (both shell-free); anything else, or nothing, powers off. sealroot has
# already undone its mounts and recorded the failure in the TPM before it exits.
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh
modprobe -a erofs overlay loop
if ! /usr/bin/sealroot boot; then
    action=$(getarg rd.emergency=)
    case $action in
        reboot | halt) ;;
        *) action=poweroff ;;
    esac
    warn "sealroot: the root could not be verified; refusing to boot ($action)"
    # The kernel's own way first (sysrq-trigger works whatever kernel.sysrq says): no userspace left to trust.
    case $action in
        reboot) trigger=b ;;
        halt) trigger=o ;;
        *) trigger=o ;;
    esac
    echo "$trigger" >/proc/sysrq-trigger 2>/dev/null
    "$action" -f 2>/dev/null
    # Never fall through to the switch root or back into dracut's flow.
    while :; do sleep 3600; done
fi
