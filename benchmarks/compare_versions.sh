#!/usr/bin/env bash
# Wall time of a default 512² morph (the face and car sample pairs → GIF, 100 frames), this checkout
# against another one (e.g. `git worktree add /tmp/old v0.7.4`), alternating, each a fresh process,
# with this checkout's virtual environment:
#
#     bash benchmarks/compare_versions.sh /tmp/old ../shared/samples [runs]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
other="$(cd "$1" && pwd)"
samples="$(cd "$2" && pwd)"
runs="${3:-3}"
python="$here/.venv/bin/python"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for run in $(seq "$runs"); do
  for checkout in "$other" "$here"; do
    for pair in "img_3 img_4 faces" "img_1 img_2 car"; do
      set -- $pair
      start=$(date +%s.%N)
      "$python" "$checkout/morph.py" -s "$samples/$1.jpg" -t "$samples/$2.jpg" -o "$work/out.gif" -q
      end=$(date +%s.%N)
      rm -f "$work/out.gif"
      printf '%s\t%s\trun %s\t%.2f s\n' "$checkout" "$3" "$run" "$(echo "$end - $start" | bc)"
    done
  done
done
