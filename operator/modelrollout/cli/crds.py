"""``modelrollout crds``: write (or check) the CustomResourceDefinitions.

The CRDs are generated from the API models. ``crds/`` holds the canonical copy and the
Helm chart carries a byte-identical one under ``files/crds/``. ``--check`` exits non-zero
when a committed file differs from a fresh rendering, naming the file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from modelrollout.core.api import catalog, docgen
from modelrollout.core.api.crdgen import render_crd

HEADER = "# Generated from the modelrollout API models by `make crds`. Do not edit.\n"


def render_files() -> dict[str, str]:
    """File name to YAML text, for every kind."""
    return {
        info.file_name: HEADER
        + yaml.safe_dump(render_crd(info), sort_keys=False, width=100, allow_unicode=True)
        for info in catalog.ALL
    }


def _targets(args: argparse.Namespace) -> list[Path]:
    targets = [Path(args.out)]
    if args.chart:
        targets.append(Path(args.chart) / "files" / "crds")
    return targets


def _run(args: argparse.Namespace) -> int:
    files = render_files()
    stale: list[str] = []
    for directory in _targets(args):
        if not args.check:
            directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            path = directory / name
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path))
            else:
                path.write_text(text)
        extra = sorted(p.name for p in directory.glob("*.yaml") if p.name not in files)
        stale.extend(str(directory / name) for name in extra)
    if args.docs:
        docs = Path(args.docs)
        text = docgen.render(catalog.ALL)
        if args.check:
            if not docs.exists() or docs.read_text() != text:
                stale.append(str(docs))
        else:
            docs.write_text(text)
    if stale:
        print("out of date (run `make crds`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("crds", help="Write the CustomResourceDefinitions.")
    parser.add_argument("--out", default="crds", help="Directory for the canonical CRDs.")
    parser.add_argument(
        "--chart", default=None, help="Chart directory; its files/crds/ gets a copy."
    )
    parser.add_argument("--docs", default=None, help="Also write the API reference here.")
    parser.add_argument(
        "--check", action="store_true", help="Only check that the files are up to date."
    )
    parser.add_argument(
        "--print", dest="print_", action="store_true", help="Print the CRDs to stdout."
    )
    parser.set_defaults(func=_dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    if args.print_:
        sys.stdout.write("---\n".join(render_files().values()))
        return 0
    return _run(args)
