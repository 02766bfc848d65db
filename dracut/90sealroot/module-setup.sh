#!/bin/bash
# dracut module: sealroot verifies the composefs image against the TPM-held digest and mounts it as the root,
# after the physical root is mounted at /sysroot and before the switch-root. Opt-in (check returns 255):
# add it with `dracut --add sealroot` or `add_dracutmodules+=" sealroot "` in dracut.conf.d.
#
# Inputs on the build host (environment overrides for packaging and tests):
#   SEALROOT_BINARY     the executable to install (default /usr/bin/sealroot)
#   SEALROOT_CONFDIR    where boot.toml and the policy key it names are taken from (default /etc/sealroot)
#
# Only what must be measured goes into the initramfs: boot.toml and the policy key. The signed approvals (the TPM
# state, [tpm] state) are public and change with every kernel or initramfs: inside the initramfs they would change
# the PCR 9 measurement they must predict (issue 14), so they are read at boot from the physical root or the ESP.

# shellcheck disable=SC2034,SC2154 # dracut's module API: variables set and read by dracut itself

check() {
    [[ -x ${SEALROOT_BINARY:-/usr/bin/sealroot} ]] || return 1
    return 255
}

depends() {
    # Only what is needed to find the physical root; systemd is used when the image has it.
    echo rootfs-block kernel-modules
    return 0
}

installkernel() {
    # erofs (the image), overlay (composefs), loop (the sealed memfd as a block device), and the TPM drivers:
    # TIS/CRB interfaces, built into some kernels and modules in others (instmods skips built-ins).
    hostonly='' instmods erofs overlay loop tpm_crb tpm_tis tpm_tis_core tpm
}

# sealroot.service waits until the TPM is usable, so that a slow TPM driver is not reported as "no TPM": after
# tpm2.target where systemd has it (>= 256: systemd-tpm2-generator pulls it in when the firmware reports a TPM2),
# else after the device unit of the TCTI's device (boot.toml [tpm] tcti, default /dev/tpmrm0). Before 256, udev does
# not tag TPM devices for systemd (no .device unit would ever appear), so a rule here does; JobRunningTimeoutSec
# bounds the wait on a machine without a TPM (sealroot then reports it itself).
sealroot_order_after_tpm() {
    local confdir=$1 dropin="$systemdsystemunitdir/sealroot.service.d" device=tpmrm0 tcti
    if [[ -e $systemdsystemunitdir/tpm2.target ]]; then
        inst_simple "$systemdsystemunitdir/tpm2.target"
        mkdir -p "$initdir$dropin"
        printf '[Unit]\nWants=tpm2.target\nAfter=tpm2.target\n' >"$initdir$dropin/10-tpm.conf"
        return 0
    fi
    tcti=$(sed -n 's/^[[:space:]]*tcti[[:space:]]*=[[:space:]]*"device:\/dev\/\([a-z0-9]*\)".*/\1/p' "$confdir/boot.toml" 2>/dev/null | head -n 1)
    [[ -n $tcti ]] && device=$tcti
    mkdir -p "$initdir$dropin" "$initdir$systemdsystemunitdir/dev-$device.device.d" "$initdir/etc/udev/rules.d"
    printf '[Unit]\nWants=dev-%s.device\nAfter=dev-%s.device\n' "$device" "$device" >"$initdir$dropin/10-tpm.conf"
    printf '[Unit]\nJobRunningTimeoutSec=15s\n' >"$initdir$systemdsystemunitdir/dev-$device.device.d/10-sealroot.conf"
    printf 'SUBSYSTEM=="tpm|tpmrm", KERNEL=="%s", TAG+="systemd"\n' "$device" >"$initdir/etc/udev/rules.d/70-sealroot-tpm.rules"
}

install() {
    local binary=${SEALROOT_BINARY:-/usr/bin/sealroot}
    local confdir=${SEALROOT_CONFDIR:-/etc/sealroot}

    # inst_binary also installs every library ldd lists and the dynamic loader.
    inst_binary "$binary" /usr/bin/sealroot || return 1
    # sealroot is a Node single executable: its application blob sits in an ELF note that `strip` (even -g, as
    # dracut runs it on every executable) breaks, and the stripped binary segfaults at start. dracut has no
    # per-file exclusion, so this initramfs is built unstripped.
    if [[ $do_strip == yes ]]; then
        dwarn "sealroot: not stripping this initramfs (stripping breaks the sealroot executable)"
        do_strip=no
    fi
    if [[ -f $confdir/boot.toml ]]; then
        inst_simple "$confdir/boot.toml" /etc/sealroot/boot.toml
        # The policy key boot.toml names (default /etc/sealroot/policy-key.pem), taken from $confdir when it lies
        # under /etc/sealroot.
        local key
        key=$(sed -n "s/^[[:space:]]*policy-key[[:space:]]*=[[:space:]]*[\"']\([^\"']*\)[\"'].*/\1/p" "$confdir/boot.toml" | head -n 1)
        key=${key:-/etc/sealroot/policy-key.pem}
        local source=$key
        [[ $key == /etc/sealroot/* ]] && source=$confdir/${key#/etc/sealroot/}
        if [[ -f $source ]]; then
            inst_simple "$source" "$key"
        else
            dwarn "sealroot: no policy key $source; sealroot will refuse to read the TPM"
        fi
        if [[ -e $confdir/tpm ]]; then
            dwarn "sealroot: $confdir/tpm is not installed: approvals are read from [tpm] state outside the initramfs"
        fi
    else
        dwarn "sealroot: $confdir/boot.toml does not exist; the initramfs has no boot.toml and sealroot will use its defaults"
    fi

    # How the root is laid out (ostree-prepare-root and composefs-setup-root read these from the initramfs).
    inst_multiple -o /usr/lib/ostree/prepare-root.conf /etc/ostree/prepare-root.conf /usr/lib/composefs/setup-root-conf.toml

    if dracut_module_included "systemd"; then
        inst_simple "$moddir/sealroot.service" "$systemdsystemunitdir/sealroot.service"
        $SYSTEMCTL -q --root "$initdir" add-wants initrd-root-fs.target sealroot.service
        sealroot_order_after_tpm "$confdir"
    else
        # The failure path powers off (or reboots/halts, rd.emergency=) instead of dying into a shell.
        inst_multiple -o poweroff reboot halt sleep
        inst_hook pre-pivot 10 "$moddir/sealroot-pre-pivot.sh"
    fi
}
