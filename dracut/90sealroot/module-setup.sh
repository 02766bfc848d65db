#!/bin/bash
# dracut module: sealroot verifies the composefs image against the TPM-held digest and mounts it as the root,
# after the physical root is mounted at /sysroot and before the switch-root. Opt-in (check returns 255):
# add it with `dracut --add sealroot` or `add_dracutmodules+=" sealroot "` in dracut.conf.d.
#
# Inputs on the build host (environment overrides for packaging and tests):
#   SEALROOT_BINARY     the executable to install (default /usr/bin/sealroot)
#   SEALROOT_CONFDIR    installed as /etc/sealroot in the initramfs: boot.toml, the TPM state (tpm/), keys
#                       (default /etc/sealroot)

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
    if [[ -d $confdir ]]; then
        # The whole directory: boot.toml, the provisioned TPM state and the policy key it names.
        inst_dir /etc/sealroot
        (cd "$confdir" && find . -type d -printf '%P\n') | while read -r dir; do
            [[ -n $dir ]] && inst_dir "/etc/sealroot/$dir"
        done
        (cd "$confdir" && find . ! -type d -printf '%P\n') | while read -r file; do
            inst_simple "$confdir/$file" "/etc/sealroot/$file"
        done
    else
        dwarn "sealroot: $confdir does not exist; the initramfs has no boot.toml and sealroot will use its defaults"
    fi

    # How the root is laid out (ostree-prepare-root and composefs-setup-root read these from the initramfs).
    inst_multiple -o /usr/lib/ostree/prepare-root.conf /etc/ostree/prepare-root.conf /usr/lib/composefs/setup-root-conf.toml

    if dracut_module_included "systemd"; then
        inst_simple "$moddir/sealroot.service" "$systemdsystemunitdir/sealroot.service"
        $SYSTEMCTL -q --root "$initdir" add-wants initrd-root-fs.target sealroot.service
    else
        inst_hook pre-pivot 10 "$moddir/sealroot-pre-pivot.sh"
    fi
}
