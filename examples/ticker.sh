#!/bin/bash
# A cluster daemon for the demo: one instance in the whole cluster logs a
# line every 2 s with its fencing token, and checks in with the master
# (FORQ_CHECKIN_FD) so that a hang would be noticed and restarted.
trap 'echo "ticker: stopping (token $FORQ_DAEMON_TOKEN)"; exit 0' TERM
while :; do
  echo "ticker: alive on pid $$ (token $FORQ_DAEMON_TOKEN)"
  [ -n "${FORQ_CHECKIN_FD:-}" ] && printf . >&"$FORQ_CHECKIN_FD"
  sleep 2 &
  wait $!
done
