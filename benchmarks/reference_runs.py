#!/usr/bin/env python3
"""Reference runs: the same command lines before and after a refactor, compared byte for byte.

    python benchmarks/reference_runs.py run DIR        # run every case, record its outputs in DIR
    python benchmarks/reference_runs.py compare A B    # a table: which cases changed

Each case is a real ``morph.py`` process (small images, few epochs, so the
whole set takes a few minutes on 2 CPU cores) in a fresh folder holding copies
of the sample images. Recorded per case: the exit status, standard output,
standard error (its own lines, not the progress bars) and the SHA-256
of every file the run wrote. ``compare`` prints one row per case and exits 1 if
any differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ("shapes_a.png", "shapes_b.png", "gradient_a.png", "gradient_b.png", "texture_a.png")
SMALL = ["-e", "12", "--frames", "5", "--size", "32", "-q"]

#: name → (files to write first, command-line arguments after ``morph.py``).
CASES: dict[str, tuple[dict[str, str], list[str]]] = {
    "gif": ({}, ["-s", "shapes_a.png", "-t", "shapes_b.png", "-o", "out.gif", *SMALL]),
    "mp4": ({}, ["-s", "shapes_a.png", "-t", "shapes_b.png", "-o", "out.mp4", *SMALL]),
    "webp": ({}, ["-s", "shapes_a.png", "-t", "shapes_b.png", "-o", "out.webp", *SMALL]),
    "default-output": ({}, ["-s", "gradient_a.png", "-t", "gradient_b.png", *SMALL]),
    "sequence": ({}, ["-s", "shapes_a.png", "-t", "gradient_b.png", "texture_a.png", "-o", "seq.gif", "--loop",
                      "--hold", "2", "--easing", "ease-in-out", "--even-pacing", *SMALL]),
    "boomerang": ({}, ["-s", "shapes_a.png", "-t", "shapes_b.png", "-o", "b.gif", "--boomerang", "--fps", "60",
                       "--interpolation", "bilinear", "--blend", "linear", *SMALL]),
    "files": ({}, ["-s", "shapes_a.png", "-t", "shapes_b.png", "-o", "f.gif", "--frames-dir", "frames",
                   "--save-maps", "m.npz", "--maps-png", "m.png", "--seed", "3", "-a", "0.5", *SMALL]),
    "tensorflow-render": ({}, ["-s", "texture_a.png", "-t", "gradient_a.png", "-o", "t.mp4",
                               "--render-engine", "tensorflow", *SMALL]),
    "preview": ({}, ["-s", "shapes_a.png", "-t", "shapes_b.png", "-o", "p.gif", "--preview", "40", *SMALL]),
    "points": ({"p.csv": "# x,y,x,y\n10,10,20,20\n40,50,45,52\n"},
               ["-s", "shapes_a.png", "-t", "shapes_b.png", "-o", "pts.gif", "--points", "p.csv", "--maps-png",
                "pts.png", *SMALL]),
    "batch": ({"rows.csv": "Source, Target, Output, flags\n"
                           "shapes_a.png,shapes_b.png,r1.gif,--seed 2\n"
                           "gradient_a.png,gradient_b.png;texture_a.png,r2.mp4,\n"
                           "missing.png,shapes_b.png,r3.gif,\n"
                           "shapes_a.png,shapes_b.png,r4.gif,-o x.gif\n"},
              ["--batch", "rows.csv", *SMALL]),
    "batch-shard": ({"rows.csv": "source,target,output\nshapes_a.png,shapes_b.png,s1.gif\n"
                                 "gradient_a.png,gradient_b.png,s2.gif\ntexture_a.png,shapes_a.png,s3.gif\n"},
                    ["--batch", "rows.csv", "--shard", "1/2", "--frames-dir", "fr", *SMALL]),
    "hybrid": ({}, ["hybrid", "--near", "shapes_a.png", "--far", "texture_a.png", "-o", "h.png", "--steps", "20",
                    "--size", "48", "-q"]),
    "hybrid-pixels": ({}, ["hybrid", "--near", "gradient_a.png", "--far", "shapes_b.png", "--steps", "10",
                           "--size", "40", "--near-term", "pixels", "--start", "near", "-q"]),
    "shift": ({}, ["shift", "-i", "shapes_a.png", "--dx", "2.5", "--dy", "-1.25", "-o", "s.png", "-q"]),
    "shift-fourier": ({}, ["shift", "-i", "texture_a.png", "--dx", "0.5", "--interpolation", "fourier", "--wrap",
                           "-q"]),
    "align": ({}, ["align", "-s", "shapes_a.png", "-t", "shapes_b.png", "-o", "al.png", "--steps", "10", "-q"]),
    "warp": ({}, ["warp", "-s", "shapes_a.png", "-t", "shapes_b.png", "-o", "w.png", "--flow-png", "fl.png",
                  "-e", "12", "--size", "32", "-q"]),
    "warp-loaded": ({}, ["warp", "-s", "shapes_a.png", "-t", "shapes_b.png", "--load-maps",
                         str(Path("..") / "files" / "m.npz"), "-w", "0.7", "-q"]),
    "load-maps": ({}, ["-s", "shapes_a.png", "-t", "shapes_b.png", "-o", "l.gif", "--load-maps",
                       str(Path("..") / "files" / "m.npz"), "-w", "0.5", "--frames", "4", "-q"]),
    "not-quiet": ({}, ["-s", "shapes_a.png", "-t", "shapes_b.png", "-o", "nq.gif", "-e", "5", "--frames", "3",
                       "--size", "24"]),
    "help": ({}, ["--help"]),
    "help-hybrid": ({}, ["hybrid", "--help"]),
    "help-shift": ({}, ["shift", "--help"]),
    "help-align": ({}, ["align", "--help"]),
    "help-warp": ({}, ["warp", "--help"]),
    "usage-errors": ({}, ["-s", "shapes_a.png", "-t", "nope.png", "--frames", "1"]),
    "missing-file": ({}, ["-s", "shapes_a.png", "-t", "nope.png"]),
    "tool-error": ({}, ["shift", "-i", "shapes_a.png", "--interpolation", "fourier"]),
    "no-tool-args": ({}, ["align"]),
}
#: Cases that read another case's outputs run after all the others.
LATER = ("warp-loaded", "load-maps")


def run_case(name: str, folder: Path) -> dict:
    files, arguments = CASES[name]
    work = folder / name
    work.mkdir(parents=True)
    for image in IMAGES:
        shutil.copy(ROOT / "images" / image, work / image)
    for file_name, text in files.items():
        (work / file_name).write_text(text)
    before = {p for p in work.rglob("*")}
    result = subprocess.run([sys.executable, str(ROOT / "morph.py"), *arguments], check=False, cwd=work, capture_output=True,
                            text=True, timeout=600, env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3",
                                                         "CUDA_VISIBLE_DEVICES": ""})
    written = sorted(p for p in work.rglob("*") if p.is_file() and p not in before)
    return {
        "status": result.returncode,
        "stdout": result.stdout,
        # Progress bars (and their timings) aside: only the program's own lines.
        "stderr": "\n".join(line for line in result.stderr.splitlines() if line.startswith("morph")),
        "files": {str(p.relative_to(work)): hashlib.sha256(p.read_bytes()).hexdigest() for p in written},
    }


def run_all(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        first = [name for name in CASES if name not in LATER]
        with ThreadPoolExecutor(2) as pool:
            results = dict(zip(first, pool.map(lambda n: run_case(n, work), first)))
            results.update(zip(LATER, pool.map(lambda n: run_case(n, work), LATER)))
    for name, result in results.items():
        print(f"{name:20s} exit {result['status']:3d}  {len(result['files'])} files")
    (folder / "reference.json").write_text(json.dumps(results, indent=1, sort_keys=True))


def compare(a: Path, b: Path) -> int:
    before = json.loads((a / "reference.json").read_text())
    after = json.loads((b / "reference.json").read_text())
    changed = 0
    print(f"{'case':20s} {'exit':>5s} {'stdout':>7s} {'stderr':>7s} {'files':>6s}")
    for name in sorted(set(before) | set(after)):
        x, y = before.get(name), after.get(name)
        if x is None or y is None:
            print(f"{name:20s} only in {'B' if x is None else 'A'}")
            changed += 1
            continue
        marks = ["same" if x[key] == y[key] else "DIFF" for key in ("status", "stdout", "stderr", "files")]
        changed += "DIFF" in marks
        print(f"{name:20s} {marks[0]:>5s} {marks[1]:>7s} {marks[2]:>7s} {marks[3]:>6s}")
        for key in ("stdout", "stderr"):
            if x[key] != y[key]:
                print(f"  {key} A: {x[key]!r}\n  {key} B: {y[key]!r}")
        if x["files"] != y["files"]:
            print(f"  files A: {x['files']}\n  files B: {y['files']}")
    print(f"{changed} of {len(set(before) | set(after))} cases differ")
    return 1 if changed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run").add_argument("folder", type=Path)
    comparing = commands.add_parser("compare")
    comparing.add_argument("a", type=Path)
    comparing.add_argument("b", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run_all(args.folder)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
