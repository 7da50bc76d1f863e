#!/usr/bin/env bash
# What the tests run besides Python and Node: Debian's chromium (the browser tests) and jq (the README's
# shell walkthrough, run by tests/test_readme.py). Installs what is missing, as root with apt-get.
set -eu
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} for the tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "missing for the tests: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 1
fi
