#!/usr/bin/env bash
# The browser the inbox tests drive (through Playwright): Debian's chromium, installed once when missing.
# Playwright's own browser download is not used: these machines reach only the package registries.
set -euo pipefail
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31merror: %s\033[0m\n' "$*" >&2; exit 1; }

for candidate in "${CHROMIUM:-}" chromium chromium-browser; do
  if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null; then exit 0; fi
done
command -v apt-get >/dev/null || die "the inbox tests need Chromium: install it, or set CHROMIUM to its path"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || die "the inbox tests need Chromium: run 'apt-get install chromium' as root"
  SUDO=sudo
fi
say "Installing Debian's chromium for the inbox tests (once)"
$SUDO apt-get update -qq >/dev/null || die "apt-get update failed: install chromium by hand"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null \
  || die "installing chromium failed: install it by hand, or set CHROMIUM to its path"
