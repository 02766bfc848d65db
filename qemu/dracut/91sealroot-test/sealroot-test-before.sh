#!/bin/sh
# pre-pivot 05 (shell flow): the measured boot state, then the stamp before sealroot's hook (10).
/usr/bin/sealroot-test pcrs || die "sealroot-test: cannot set the test PCRs"
/usr/bin/sealroot-test stamp sealroot-start
