#!/usr/bin/env bash
# Make sure a headless-capable Chromium exists for the report's browser test.
# Installs Debian's `chromium` package with apt-get when it is missing and we are root;
# otherwise prints one warning line. Always exits 0: the test skips without a browser.
# Idempotent and quiet: a no-op when chromium is already on PATH.
set -uo pipefail

for exe in chromium chromium-browser google-chrome; do
  if command -v "$exe" >/dev/null 2>&1; then
    exit 0
  fi
done

if [ "$(id -u)" -ne 0 ]; then
  echo "[ensure-chromium] warning: no chromium on PATH and not root; the headless report test will be skipped (install: apt-get install chromium)" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[ensure-chromium] warning: no chromium and no apt-get; the headless report test will be skipped" >&2
  exit 0
fi

echo "[ensure-chromium] installing Debian's chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq >/dev/null && \
       apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
  echo "[ensure-chromium] warning: apt-get could not install chromium; the headless report test will be skipped" >&2
fi
exit 0
