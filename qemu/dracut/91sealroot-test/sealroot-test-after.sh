#!/bin/sh
# pre-pivot 20 (shell flow): reached only when sealroot's hook (10) did not die.
/usr/bin/sealroot-test succeeded
/usr/bin/sealroot-test check
