# A Python tool in its own virtual environment under target/tools/ (Debian's Python
# refuses system-wide pip installs), made once and reused, its bin put on PATH.
# Usage: tool_venv NAME EXECUTABLE PIP-ARGS...
#   e.g. tool_venv schemathesis schemathesis 'schemathesis==4.32.5'
tool_venv() {
    local name="$1" executable="$2"
    shift 2
    local venv="$PWD/target/tools/$name"
    if [ ! -x "$venv/bin/$executable" ]; then
        if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
            echo "==> installing python3-venv"
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        fi
        echo "==> installing $name"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
    fi
    export PATH="$venv/bin:$PATH"
}
