#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, once; says so and carries on where it cannot.
set -u
# Qt's runtime libraries (GUI tests), then GStreamer's RTSP server for the system python3 (tests/rtsp_server.py:
# appsrc and videoconvert from -base, rtph264pay from -good, x264enc from -ugly).
packages=(libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3
          python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: no apt-get here; install these yourself if tests fail: ${missing[*]}"; exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
echo "system-deps: installing ${missing[*]}"
$SUDO apt-get update -qq >/dev/null 2>&1
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  echo "system-deps: could not install ${missing[*]} (need root or passwordless sudo); tests needing them will say why they skip"
fi
exit 0
