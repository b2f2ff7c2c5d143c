#!/usr/bin/env bash
# Installs the Debian packages that the launcher's window (`run`) or the tests (`test`) need,
# if missing. As root (CI) it installs them; otherwise it names them and how to install them.
set -euo pipefail
window=(libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0)
case "${1:-test}" in
  run)  want=("${window[@]}") ;;
  test) want=("${window[@]}" xvfb desktop-file-utils chromium trayer xdotool x11-utils) ;;
  *)    echo "usage: $0 run|test" >&2; exit 2 ;;
esac
command -v dpkg-query >/dev/null || { echo "not a Debian system: install the equivalents of ${want[*]}" >&2; exit 0; }
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
  [ "${1:-test}" = run ] || exit 1  # the window may still start on a full desktop
fi
