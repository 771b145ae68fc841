#!/usr/bin/env bash
# Install the Debian packages the demo and the tests run for real, when any of their binaries is missing.
# docker-compose (1.29, Debian's) only validates docker-compose.yaml: `docker-compose config` needs no engine.
set -euo pipefail
declare -A need=([prometheus]=prometheus [promtool]=prometheus [prometheus-alertmanager]=prometheus-alertmanager
                 [amtool]=prometheus-alertmanager [haproxy]=haproxy
                 [prometheus-node-exporter]=prometheus-node-exporter [docker-compose]=docker-compose)
missing=()
for bin in "${!need[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${need[$bin]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
pkgs=${pkgs% }
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing binaries from the Debian packages: $pkgs- this needs a Debian or Ubuntu machine with apt-get" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "installing $pkgs needs root: run 'apt-get install -y $pkgs' as root, then try again" >&2; exit 1
  fi
fi
echo "installing Debian packages: $pkgs"
log=$(mktemp)
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
       --no-install-recommends $pkgs; } >"$log" 2>&1; then
  echo "could not install $pkgs with apt-get: $(grep -E '^(E|W):' "$log" | tail -1) (full output: $log)" >&2
  exit 1
fi
rm -f "$log"
