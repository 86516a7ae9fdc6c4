#!/usr/bin/env bash
# Headless Chromium for the site test (tests/test_site.py), from Debian's packages.
# Does nothing when a chromium binary is already on PATH.
set -euo pipefail
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the site test ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "No chromium found and cannot apt-get install it (needs root on Debian/Ubuntu)." >&2
  echo "Install chromium yourself; the site test is skipped without it (and fails in CI)." >&2
fi
