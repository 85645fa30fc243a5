#!/usr/bin/env bash
# Packs the release at a git tag the way `npm pack` would have packed it that day, into
# test/data/releases/conclave-<version>.tgz: the previous release that the upgrade tests install
# (test/helpers/previousRelease.ts). Run it once per new release tag: `scripts/pack-release.sh v0.2.0`.
set -euo pipefail
tag=${1:?usage: scripts/pack-release.sh TAG (for example v0.1.0)}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$root" archive "$tag" | tar -x -C "$work"
mkdir -p "$root/test/data/releases"
(cd "$work" && npm pack --ignore-scripts --silent --pack-destination "$root/test/data/releases")
