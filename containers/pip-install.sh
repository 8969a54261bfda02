#!/usr/bin/env bash
# Build-time pip install of containers/Dockerfile (installed in the image as /usr/local/bin/mergeir-pip-install):
#   mergeir-pip-install -c constraints.txt -r requirements.txt ...   (pip install's arguments)
# Every wheel the set needs is first put in a wheelhouse on the build's cache mount (/root/.cache/mergeir-wheels,
# one per CUDA major: torch 2.13.0+cu128 would otherwise satisfy a CUDA 13 image's torch==2.13.0), downloading or
# building only what is not there yet; then the set is installed from the wheelhouse alone. A wheelhouse, not
# pip's HTTP cache: that one stays empty behind proxies that drop caching headers (CI's), and an sdist (deepspeed)
# is built once, not on every build. torch's CUDA build comes from MERGEIR_TORCH_INDEX (empty: PyPI's); the
# build secret pip-ca, when given, is the CA bundle pip trusts.
set -euo pipefail
wheels=/root/.cache/mergeir-wheels/cuda${MERGEIR_CUDA_MAJOR:?}
mkdir -p "$wheels"
if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi
index=()
if [ -n "${MERGEIR_TORCH_INDEX:-}" ]; then index=(--extra-index-url "$MERGEIR_TORCH_INDEX"); fi
pip wheel --progress-bar off --wheel-dir "$wheels" --find-links "$wheels" "${index[@]}" "$@"
pip install --progress-bar off --no-index --find-links "$wheels" "$@"
