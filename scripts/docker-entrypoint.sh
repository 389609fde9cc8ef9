#!/bin/sh
# docker-entrypoint: the container's entry point. It always ends in exec, so
# the program it starts replaces this shell and becomes PID 1: forq then gets
# the runtime's signals itself and reaps orphans (see forq(1), CONTAINERS).
#
#   docker run IMAGE                      forq with the image's CMD
#   docker run IMAGE -P 4 -q critical,3   forq -P 4 -q critical,3
#   docker run IMAGE forq -n -C FILE      forq -n -C FILE
#   docker run IMAGE sh                   any other program, as given
set -eu

if [ "$#" -eq 0 ]; then
	set -- forq
else
	case "$1" in
	-*) set -- forq "$@" ;;
	esac
fi

exec "$@"
