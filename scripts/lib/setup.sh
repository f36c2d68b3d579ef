# Shared set-up steps of scripts/run-app and scripts/run-tests. Sourced, not run.
#
# Creates .venv in the checkout and installs the project into it, and, when run
# as root on Debian or Ubuntu, installs the Debian packages the tests and the
# application use. A stamp file skips the pip step while pyproject.toml is
# unchanged, so repeated runs start quickly.

# Peers the tests start (dcmtk, dicom3tools, Orthanc with its DICOMweb plugin),
# a virtual screen for screenshots, and the libraries Qt's xcb platform loads.
TEST_DEB_PACKAGES=(
    dcmtk dicom3tools orthanc orthanc-dicomweb openssl
    xvfb xauth
)
QT_DEB_PACKAGES=(
    libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1
    libxcb-shape0 libxcb-render-util0 libxcb-image0 libegl1 libgl1
    libfontconfig1 libdbus-1-3 libxkbcommon0
)

missing_deb_packages() {
    local package
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            printf '%s\n' "$package"
        fi
    done
}

install_deb_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "note: not a Debian-based system; install the equivalents of: $*" >&2
        return 0
    fi
    local missing
    mapfile -t missing < <(missing_deb_packages "$@")
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: missing Debian packages: ${missing[*]}" >&2
        echo "Run as root, or install them first: sudo apt-get install ${missing[*]}" >&2
        return 1
    fi
    echo "Installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
    # Debian starts Orthanc as a system service on install where it can; the
    # tests start their own instances on free ports, so the service is unused.
}

find_python() {
    local candidate
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# ensure_venv EXTRA: create .venv and install the project with the optional
# dependency group EXTRA ("" for the application alone, "test" for the suite).
ensure_venv() {
    local extra="$1" python stamp spec
    if [ ! -x .venv/bin/python ]; then
        if ! python=$(find_python); then
            if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
                install_deb_packages python3 python3-venv
                python=$(find_python) || { echo "error: Python 3.11 or newer is required" >&2; return 1; }
            else
                echo "error: Python 3.11 or newer with the venv module is required" >&2
                return 1
            fi
        fi
        "$python" -m venv .venv
    fi
    spec="."
    [ -n "$extra" ] && spec=".[$extra]"
    stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-${extra:-app}"
    if [ ! -e "$stamp" ]; then
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet --editable "$spec"
        touch "$stamp"
    fi
}
