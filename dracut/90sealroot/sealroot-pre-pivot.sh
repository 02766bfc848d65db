#!/bin/sh
# dracut pre-pivot hook (shell flow, no systemd): the physical root is mounted at $NEWROOT; sealroot replaces it
# with the verified composefs root. Any failure stops the boot (die: emergency shell or rd.emergency action).
type die >/dev/null 2>&1 || . /lib/dracut-lib.sh
modprobe -a erofs overlay loop
if ! /usr/bin/sealroot boot; then
    warn "sealroot: the root could not be verified; refusing to boot"
    die "sealroot failed"
fi
