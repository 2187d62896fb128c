#!/bin/sh
# openai_node_check.sh DIR BASE_URL MODEL — run tests/openai_node_check.mjs with the official `openai`
# npm package against a running `pika serve-model`. The package is installed once into DIR (a scratch
# directory, e.g. /tmp/pika-openai-npm) with `npm install openai`. Exit status: 0 all checks passed,
# 1 a check failed, 3 npm could not install the package (the reason is printed).
set -u
DIR=$1
URL=$2
MODEL=$3
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR" || exit 3
if [ ! -f "$DIR/node_modules/openai/package.json" ]; then
    [ -f "$DIR/package.json" ] || printf '{"name": "pika-openai-check", "private": true}\n' >"$DIR/package.json"
    echo "openai-node: npm install openai into $DIR" >&2
    if ! (cd "$DIR" && npm install --no-audit --no-fund --loglevel=error openai >"$DIR/npm-install.log" 2>&1); then
        echo "openai-node: 'npm install openai' failed in $DIR (network or registry problem?):"
        tail -n 20 "$DIR/npm-install.log"
        exit 3
    fi
fi
cp "$HERE/openai_node_check.mjs" "$DIR/check.mjs" || exit 1
echo "openai-node: openai $(node -p "require('$DIR/node_modules/openai/package.json').version"), node $(node --version)"
cd "$DIR" && node check.mjs "$URL" "$MODEL"
