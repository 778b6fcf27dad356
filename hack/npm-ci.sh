#!/usr/bin/env bash
# Installs the locked npm packages (npm ci). npm 11.19 here writes lock files that its own
# `npm ci` then rejects ("Missing: @swc/core-darwin-arm64@ from lock file": other platforms'
# optional binaries are never recorded). npm 10's `ci` installs the same lock correctly, so use
# it when that happens. Versions still come from package-lock.json either way.
set -euo pipefail
cd "$(dirname "$0")/.."
flags=(--no-audit --no-fund --loglevel=error)
if ! out=$(npm ci "${flags[@]}" 2>&1); then
  if ! grep -q "from lock file" <<<"$out"; then
    echo "$out" >&2
    exit 1
  fi
  echo "npm-ci: this npm rejects its own lock file's optional platform packages; using npm 10's ci" >&2
  npx -y npm@10.9.9 ci "${flags[@]}"
fi
touch node_modules # newer than package-lock.json: make's node_modules target is satisfied
