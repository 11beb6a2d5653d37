#!/usr/bin/env bash
# The browser the inbox tests drive (through Playwright): Debian's chromium, installed once when missing.
# Playwright's own browser download is not used: these machines reach only the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/step.sh
source scripts/step.sh
STEP_LOG=data/logs/browser.log
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
install_chromium() {
  $SUDO apt-get update -qq || return
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
}
mkdir -p "$(dirname "$STEP_LOG")"
step "Installing Debian's chromium for the inbox tests (once)" install_chromium \
  || die "installing chromium failed: install it by hand, or set CHROMIUM to its path"
