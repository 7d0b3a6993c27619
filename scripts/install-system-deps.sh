#!/bin/sh
# Copyright (c) 2026, pipecat-tandem contributors
# SPDX-License-Identifier: BSD 2-Clause License
#
# System packages for the real-client end-to-end tests (idempotent).
# Chromium drives the browser e2e test; espeak-ng makes real speech for the
# fake microphone (the tests fall back to a synthetic voice without it).
# redis-server backs the remote background workers' tests and benchmark (the
# tests start their own instance on a free port; the package's service is not used).
# haproxy fronts `tandem run --workers N` (tandem starts its own; the package's service is not used).
set -eu

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

missing=""
[ -x /usr/lib/chromium/chromium ] || missing="$missing chromium"
command -v espeak-ng >/dev/null 2>&1 || missing="$missing espeak-ng"
command -v unshare >/dev/null 2>&1 || missing="$missing util-linux"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null 2>&1 || missing="$missing haproxy"

if [ -z "$missing" ]; then
    echo "install-system-deps: nothing to do"
    exit 0
fi

echo "install-system-deps: installing$missing"
$SUDO apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
[ -x /usr/lib/chromium/chromium ] || { echo "chromium binary missing after install" >&2; exit 1; }
command -v redis-server >/dev/null 2>&1 || { echo "redis-server missing after install" >&2; exit 1; }
echo "install-system-deps: done"
