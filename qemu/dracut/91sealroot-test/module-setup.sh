#!/bin/bash
# Test-only dracut module (never install it on a real system): stands in for the measured boot chain around
# sealroot in the QEMU tests. Before sealroot.service it extends the test PCRs with the trusted or a rogue value
# (test.pcr= on the kernel command line); after it, it checks that a second unseal fails (the PCR cap holds).
# It also prints the timestamps the boot breakdown uses (@@ T <label> <uptime>).
# SEALROOT_TEST_FILES: directory with the prebuilt TPM2 commands and check.sh, made by qemu/lib/dracut.ts.
# shellcheck disable=SC2034,SC2154
check() { return 255; }
depends() { echo sealroot; return 0; }
install() {
    inst_multiple dd od tr cat sleep dmesg grep
    inst_dir /etc/sealroot-test
    local file
    for file in "$SEALROOT_TEST_FILES"/*; do
        inst_simple "$file" "/etc/sealroot-test/${file##*/}"
    done
    inst_simple "$SEALROOT_TEST_FILES/prepare-root.conf" /usr/lib/ostree/prepare-root.conf
    inst_script "$moddir/sealroot-test.sh" /usr/bin/sealroot-test
    if dracut_module_included "systemd"; then
        inst_simple "$moddir/sealroot-test-pcrs.service" "$systemdsystemunitdir/sealroot-test-pcrs.service"
        inst_simple "$moddir/sealroot-test-check.service" "$systemdsystemunitdir/sealroot-test-check.service"
        # Stamps the moment sealroot.service starts sealroot (after the unit's own ExecStartPre), and its result.
        inst_simple "$moddir/sealroot-stamp.conf" "$systemdsystemunitdir/sealroot.service.d/sealroot-test-stamp.conf"
        # test.sealroot-timeout=N: a shorter start timeout for the start-timeout scenario.
        inst_script "$moddir/sealroot-test-generator.sh" "$systemdutildir/system-generators/sealroot-test-generator"
        $SYSTEMCTL -q --root "$initdir" add-wants initrd-root-fs.target sealroot-test-pcrs.service
        $SYSTEMCTL -q --root "$initdir" add-wants initrd-root-fs.target sealroot-test-check.service
    else
        # Shell flow: around sealroot's pre-pivot hook (10).
        inst_hook pre-pivot 05 "$moddir/sealroot-test-before.sh"
        inst_hook pre-pivot 20 "$moddir/sealroot-test-after.sh"
    fi
}
