#!/usr/bin/env bash
# Headless Chromium for the UI test (tests/ui): Debian's `chromium` package, installed when it is
# missing and this machine can (root and apt-get). Never fails the caller: without Chromium the
# browser part of the UI test is skipped and says why.
set -uo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: not root or no apt-get; the UI test will skip its browser part" >&2
  exit 0
fi
echo "Installing Debian's chromium for the UI test ..."
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
  echo "install-chromium: apt-get could not install chromium; the UI test will skip its browser part" >&2
fi
exit 0
