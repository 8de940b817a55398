#!/usr/bin/env bash
# Makes sure redis-server and redis-cli (Debian package `redis-server`) are installed.
#
#   bash scripts/ensure-redis.sh          check; install with apt-get when root, else say how
#   bash scripts/ensure-redis.sh --check  check only: never install (exit 1 when missing)
#
# The tests start their own redis-server processes on free loopback ports; they never use
# a server on 6379. So after installing, this script stops the one the Debian package may
# have started there.
set -euo pipefail

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

have_redis() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1
}

print_version() {
  echo "ensure-redis: $(redis-server --version) ($(command -v redis-server))"
}

if have_redis; then
  print_version
  exit 0
fi

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-cli)
echo "ensure-redis: not found on PATH: ${missing[*]}" >&2

if [ "$check_only" = 1 ]; then
  echo "ensure-redis: install it with: sudo apt-get install -y redis-server (or run: bash scripts/ensure-redis.sh as root)" >&2
  exit 1
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-redis: the tests need a local redis-server (7.x). Install it with:" >&2
  echo "sudo apt-get install -y redis-server"
  exit 1
fi

echo "ensure-redis: installing redis-server with apt-get"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server

# The package's post-install may have started a server on the default port. The tests do
# not use it, so stop it; ignore every failure here (no init system, nothing running, ...).
if command -v service >/dev/null 2>&1; then
  service redis-server stop >/dev/null 2>&1 || true
fi
if command -v redis-cli >/dev/null 2>&1 \
  && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  echo "ensure-redis: stopping the redis-server the package started on 127.0.0.1:6379"
  redis-cli -h 127.0.0.1 -p 6379 shutdown nosave >/dev/null 2>&1 || true
fi

hash -r
if ! have_redis; then
  echo "ensure-redis: apt-get install finished but redis-server/redis-cli are still not on PATH" >&2
  exit 1
fi
print_version
