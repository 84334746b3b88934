#!/usr/bin/env bash
# A real OpenXR runtime (Monado, simulated HMD, null compositor) for xrstory's OpenXR tests.
#
# Monado's client library is loaded into the app's process and needs Debian 13's glibc, so on
# a Debian 12 host the app runs inside a Debian 13 (trixie) root built here with debootstrap;
# on a Debian 13 host the packages are installed directly and no root is built.
#
# Usage:
#   scripts/monado-root.sh build         build (or reuse) the runtime; idempotent, stamped,
#                                        cached under .cache/monado-root (~1 min the first time)
#   scripts/monado-root.sh run CMD ...   run CMD with the runtime's python first on PATH, the repo
#                                        at the same path and cwd = repo root (inside the root, on
#                                        Debian 12: a private mount namespace with /dev, /proc,
#                                        /sys, /tmp and the repo bind-mounted, then chroot)
#   scripts/monado-root.sh mode          print "root" or "native"
#   scripts/monado-root.sh host-python   print the host .venv's python when it can run inside the
#                                        runtime (exit 1 with the reason when it cannot)
#
# The full app (torch, Whisper, TTS) runs inside the root with the HOST's .venv: glibc is backward
# compatible, so binaries built on Debian 12 run on Debian 13. `run` bind-mounts the host Python's
# installation (sys.base_prefix of .venv, e.g. ~/.pyenv/versions/3.11.7) read-only at the same
# path, and the root carries the Debian libraries the app loads itself (APP_PKGS).
#
# Environment inside `run`: PYTHONPATH=<repo>, EGL_PLATFORM=surfaceless, XRT_COMPOSITOR_NULL=1,
# SIMULATED_ENABLE=1, a fresh XDG_RUNTIME_DIR (mode 700) unless XDG_RUNTIME_DIR is passed in
# MONADO_XDG_RUNTIME_DIR, and any XRSTORY_* variables of the caller.
# Why each of these: docs/OPENXR.md, /work/shared/ENVIRONMENT.md ("A real OpenXR runtime").
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO/.cache/monado-root"
ROOT="$CACHE/trixie"
APT_PKGS=(monado-service libopenxr1-monado libopenxr-loader1 mesa-vulkan-drivers libegl1 libegl-mesa0
          libgl1-mesa-dri libgl1 libopengl0 python3 python3-venv)
# The light part of pyproject's dependencies (story, render, xr) with what they pull, pinned
# inside pyproject's ranges; cp313 wheels exist for all of them.
WHEELS=(numpy==2.4.6 moderngl==5.13.0 glcontext==3.1.0 pyopenxr==1.1.6501 PyOpenGL==3.1.10
        pydantic==2.14.4 pillow==13.0.0 pygltflib==1.16.5 freetype-py==2.5.1 typer==0.29.2 rich==15.0.0)
# What the full app (host .venv) loads from Debian that Monado's packages do not pull: libespeak-ng
# (TTS, through ctypes) and the espeak-ng voice data. A layer of its own, installed into an existing
# root with its own stamp, so adding it does not rebuild the root under concurrent runs.
APP_PKGS=(espeak-ng libespeak-ng1)
APP_STAMP_WANT="$(printf '%s\n' "${APP_PKGS[@]}" app-v1 | sha256sum | cut -c1-16)"
STAMP_WANT="$(printf '%s\n' "${APT_PKGS[@]}" "${WHEELS[@]}" v3 | sha256sum | cut -c1-16)"

log() { echo "[monado-root] $*" >&2; }

# Debian 13 ("trixie/sid" on testing) has Monado itself: no root needed.
native() { local v; v="$(cat /etc/debian_version 2>/dev/null || true)"; [[ "${v%%.*}" -ge 13 || "$v" == trixie* ]] 2>/dev/null; }

mirror() {
  # The host's Debian mirror (the machines reach only their configured mirror).
  local m=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    m="$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1 || true)"
  fi
  if [[ -z "$m" && -f /etc/apt/sources.list ]]; then
    m="$(grep -E '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1 || true)"
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# The host Python installation to bind into the root for the host .venv (empty when there is none
# or it cannot be carried: a distribution Python in /usr would have to replace the root's own).
host_python_prefix() {
  [[ -x "$REPO/.venv/bin/python" ]] || return 0
  local p
  p="$("$REPO/.venv/bin/python" -c 'import os, sys; print(os.path.realpath(sys.base_prefix))' 2>/dev/null)" || return 0
  case "$p" in /|/usr|/usr/local|"") return 0 ;; esac
  echo "$p"
}

host_python() { if [[ -x "$REPO/.venv/bin/python" ]]; then echo "$REPO/.venv/bin/python"; else echo python3; fi; }

download_wheels() {  # $1: folder
  "$(host_python)" -m pip download -q --disable-pip-version-check --only-binary=:all: \
    --python-version 3.13 --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$1" "${WHEELS[@]}" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
  ls "$1"/numpy-*.whl >/dev/null  # fail loudly when the download did not happen
}

# Run "$@" inside ROOT (given as $1) in a private mount namespace; mounts vanish with it.
in_root() {
  local root="$1"; shift
  unshare --mount --fork --propagation private -- /bin/bash -c '
    set -e
    root="$1"; repo="$2"; pyprefix="$3"; shift 3
    mount --rbind /dev "$root/dev"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --bind /tmp "$root/tmp"
    mkdir -p "$root$repo"
    mount --bind "$repo" "$root$repo"
    if [[ -n "$pyprefix" ]]; then  # the host .venv'"'"'s interpreter and stdlib, read-only
      mkdir -p "$root$pyprefix"
      mount --bind -o ro "$pyprefix" "$root$pyprefix"
    fi
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    exec chroot "$root" "$@"
  ' in_root "$root" "$REPO" "$(host_python_prefix)" "$@"
}

# Install APP_PKGS into the existing root (apt-get is idempotent); stamped apart from the root.
build_app_layer() {
  [[ "$(cat "$CACHE/stamp-app" 2>/dev/null || true)" == "$APP_STAMP_WANT" ]] && return 0
  local t0=$SECONDS
  log "apt-get install ${APP_PKGS[*]} into the root (for the host .venv's app)"
  in_root "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    /bin/bash -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${APP_PKGS[*]} && apt-get clean" \
    >"$CACHE/apt-app.log" 2>&1 || { tail -20 "$CACHE/apt-app.log" >&2; log "apt-get failed; log: $CACHE/apt-app.log"; exit 1; }
  echo "$APP_STAMP_WANT" >"$CACHE/stamp-app"
  log "app layer ready in $((SECONDS - t0)) s"
}

build_root() {
  local tmp="$CACHE/trixie.tmp"
  rm -rf "$tmp"; mkdir -p "$tmp"
  local t0=$SECONDS
  log "debootstrap trixie from $(mirror) (about 30 s)"
  debootstrap --variant=minbase trixie "$tmp" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; log "debootstrap failed; log: $CACHE/debootstrap.log"; exit 1; }
  log "apt-get install ${APT_PKGS[*]} (about 25 s)"
  in_root "$tmp" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    /bin/bash -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${APT_PKGS[*]} && apt-get clean" \
    >"$CACHE/apt.log" 2>&1 || { tail -20 "$CACHE/apt.log" >&2; log "apt-get failed; log: $CACHE/apt.log"; exit 1; }
  log "python 3.13 venv with the light wheels"
  # pip inside the root cannot verify the registry's certificate: download outside, install inside.
  mkdir -p "$tmp/opt/wheels"
  download_wheels "$tmp/opt/wheels"
  in_root "$tmp" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/bash -c \
    'python3 -m venv /opt/xrstory-venv && /opt/xrstory-venv/bin/pip install -q --disable-pip-version-check --no-index -f /opt/wheels /opt/wheels/*.whl' \
    >"$CACHE/pip.log" 2>&1 || { tail -20 "$CACHE/pip.log" >&2; log "pip failed; log: $CACHE/pip.log"; exit 1; }
  rm -rf "$tmp/opt/wheels"
  rm -rf "$ROOT"; mv "$tmp" "$ROOT"
  log "root ready in $((SECONDS - t0)) s: $ROOT"
}

build_native() {
  local t0=$SECONDS missing=() p
  for p in "${APT_PKGS[@]}" "${APP_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    local sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    log "apt-get install ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
  rm -rf "$CACHE/venv"
  /usr/bin/python3 -m venv "$CACHE/venv"
  "$CACHE/venv/bin/pip" install -q --disable-pip-version-check "${WHEELS[@]}"
  log "native Monado ready in $((SECONDS - t0)) s"
}

build() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9  # two test runs at once: the second waits and then finds the stamp
  if [[ "$(cat "$CACHE/stamp" 2>/dev/null || true)" != "$STAMP_WANT" ]]; then
    if native; then build_native; else
      [[ $(id -u) -eq 0 ]] || { log "building the Debian 13 root needs root (debootstrap, chroot)"; exit 1; }
      command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install debootstrap"; exit 1; }
      rm -f "$CACHE/stamp-app"  # a new root has no app layer yet
      build_root
    fi
    echo "$STAMP_WANT" >"$CACHE/stamp"
  fi
  native || build_app_layer  # native: build_native installed APP_PKGS with the rest
}

# The host .venv's python, if it can run inside the runtime; else exit 1 saying why.
host_python_in_runtime() {
  local py="$REPO/.venv/bin/python"
  [[ -x "$py" ]] || { log "no host .venv ($py): run scripts/setup.sh"; exit 1; }
  if ! native && [[ -z "$(host_python_prefix)" ]]; then
    log "the host .venv's Python lives in /usr (a distribution Python); the Debian 13 root cannot carry it" \
        "next to its own. Make .venv from a Python with a prefix of its own (pyenv, uv) or use a Debian 13 host."
    exit 1
  fi
  echo "$py"
}

run() {
  build
  local xdg="${MONADO_XDG_RUNTIME_DIR:-}" own_xdg=0
  if [[ -z "$xdg" ]]; then xdg="$(mktemp -d /tmp/xrstory-xdg.XXXXXX)"; own_xdg=1; fi
  chmod 700 "$xdg"
  local envs=(PATH="/opt/xrstory-venv/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root LANG=C.UTF-8
              PYTHONPATH="$REPO" PYTHONUNBUFFERED=1 EGL_PLATFORM=surfaceless XRT_COMPOSITOR_NULL=1
              SIMULATED_ENABLE=1 XDG_RUNTIME_DIR="$xdg")
  local v
  while IFS= read -r v; do envs+=("$v"); done < <(env | grep -E '^XRSTORY_' || true)
  local rc=0
  if native; then
    envs[0]="PATH=$CACHE/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    (cd "$REPO" && env -i "${envs[@]}" "$@") || rc=$?
  else
    in_root "$ROOT" /usr/bin/env -i "${envs[@]}" /bin/bash -c 'cd "$1" && shift && exec "$@"' run "$REPO" "$@" || rc=$?
  fi
  ((own_xdg)) && rm -rf "$xdg"
  return $rc
}

case "${1:-}" in
  build) build ;;
  run) shift; [[ $# -gt 0 ]] || { log "usage: $0 run CMD ..."; exit 2; }; run "$@" ;;
  host-python) host_python_in_runtime ;;
  mode) if native; then echo native; else echo root; fi ;;
  *) echo "usage: $0 build | run CMD ... | mode | host-python" >&2; exit 2 ;;
esac
