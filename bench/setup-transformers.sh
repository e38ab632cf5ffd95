#!/usr/bin/env bash
# Makes bench/.venv-hf: Debian's Python 3.11 with transformers and a CPU torch, for the transformers side of
# the prefix bench (bench/prefix_hf.py). No model hub is reached; packages come from a wheel mirror:
# EDITEVAL_WHEELS (colon-separated folders), else the machine's /opt/wheels, /opt/pypi/files and
# /opt/pypi-more/files where they exist, else PyPI if it is reachable. Versions are pinned to those
# measured in bench/README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-hf"
py="${EDITEVAL_BENCH_BASE_PYTHON:-/usr/bin/python3}"
pins=("torch==2.13.0+cpu" "transformers==5.18.0")
links=()
IFS=: read -r -a dirs <<< "${EDITEVAL_WHEELS:-/opt/wheels:/opt/pypi/files:/opt/pypi-more/files}"
for d in "${dirs[@]}"; do [ -d "$d" ] && links+=(--find-links "$d"); done
"$py" -m venv "$venv"
if [ ${#links[@]} -gt 0 ]; then
  "$venv/bin/python" -m pip install --quiet --no-index "${links[@]}" "${pins[@]}"
else
  "$venv/bin/python" -m pip install --quiet --extra-index-url https://download.pytorch.org/whl/cpu "${pins[@]}"
fi
"$venv/bin/python" -c 'import torch, transformers; print("bench/.venv-hf: torch", torch.__version__, "transformers", transformers.__version__)'
