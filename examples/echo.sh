#!/bin/sh
# An exec handler in shell: the job's payload arrives on stdin, its identity
# in FORQ_* variables. Exit 0 = success; anything else = failure, with the
# tail of stderr as the error message (see forq.ini(5), [job] sections).
set -eu
payload=$(cat)
echo "EchoJob $FORQ_JID (retry_count=$FORQ_RETRY_COUNT) from queue $FORQ_QUEUE: $payload"
case "$payload" in
*'"fail"'*)
	echo "asked to fail" >&2
	exit 3
	;;
esac
