"""`content`: print or write the SIEM content that is generated from the shipper's own structs and
tables, and check that the committed copies are current.

    python -m shipper.content sentinel-dcr > deploy.json    # one artifact to stdout
    python -m shipper.content write                         # every generated file, in the repository
    python -m shipper.content check                         # exit 1 when a committed file is stale
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import sentinel, splunk


@dataclass(frozen=True)
class Artifact:
    name: str
    path: str  # relative to the repository root
    render: Callable[[], str]
    help: str


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (queries) as literal blocks, as the Azure-Sentinel repository keeps them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def _yaml(doc: object) -> str:
    return yaml.dump(doc, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=120)


ARTIFACTS: dict[str, Artifact] = {a.name: a for a in (
    Artifact("sentinel-dcr", "configs/sentinel/deploy.json", lambda: sentinel.render_json(sentinel.arm_template()),
             "ARM template: custom table, DCE, DCR (stream columns from the record structs), ASIM parsers"),
    Artifact("sentinel-table", "configs/sentinel/GenesysCloudAudit_CL.table.json",
             lambda: sentinel.render_json({"properties": {"schema": {"name": sentinel.TABLE,
                                                                     "columns": sentinel.table_columns()}}}),
             "the custom table alone, as the Tables API takes it (az rest --method put --body @...)"),
    Artifact("sentinel-parser", f"configs/sentinel/parsers/{sentinel.ASIM_PARSER}.yaml",
             lambda: _yaml(sentinel.parser_yaml(filtering=False)), "ASIM AuditEvent parser (Azure-Sentinel format)"),
    Artifact("sentinel-parser-filtering", f"configs/sentinel/parsers/{sentinel.VIM_PARSER}.yaml",
             lambda: _yaml(sentinel.parser_yaml(filtering=True)), "ASIM AuditEvent filtering parser"),
    Artifact("splunk-props", f"configs/splunk/{splunk.APP}/default/props.conf", splunk.props_conf,
             "props.conf of the Splunk app: sourcetype, KV_MODE=json, CIM Change mapping of siem records"),
)}


def repo_root() -> Path:
    """The repository this package runs from (where configs/ is), else the working directory."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "configs").is_dir() else Path.cwd()


def stale(root: Path) -> list[str]:
    """Generated files under `root` that differ from what the generators produce now."""
    out = []
    for a in ARTIFACTS.values():
        path = root / a.path
        if not path.is_file() or path.read_text(encoding="utf-8") != a.render():
            out.append(a.path)
    return out


def write(root: Path) -> list[str]:
    written = []
    for a in ARTIFACTS.values():
        path = root / a.path
        text = a.render()
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(a.path)
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `content` verb's own arguments (for shipper/cli.py, or main below)."""
    sub = parser.add_subparsers(dest="content_verb", required=True, metavar="WHAT")
    for a in ARTIFACTS.values():
        sub.add_parser(a.name, help=f"print {a.help} ({a.path})")
    for verb, text in (("write", "write every generated file under --root"),
                       ("check", "exit 1 when a generated file under --root is stale"),
                       ("list", "list the generated files")):
        p = sub.add_parser(verb, help=text)
        if verb != "list":
            p.add_argument("--root", type=Path, default=None, help="repository root (default: this checkout)")


def run(args: argparse.Namespace) -> int:
    verb = args.content_verb
    if verb in ARTIFACTS:
        sys.stdout.write(ARTIFACTS[verb].render())
        return 0
    if verb == "list":
        for a in ARTIFACTS.values():
            print(f"{a.name:28} {a.path}")
        return 0
    root = args.root or repo_root()
    if verb == "write":
        for path in write(root):
            print(f"wrote {path}", file=sys.stderr)
        return 0
    old = stale(root)
    for path in old:
        print(f"stale: {path} (run `genesys-audit-shipper content write`)", file=sys.stderr)
    return 1 if old else 0


def cmd_content(args: argparse.Namespace, lifecycle: object = None) -> int:
    """The shape of shipper/cli.py's COMMANDS entries."""
    return run(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genesys-audit-shipper content", allow_abbrev=False,
                                     description="SIEM content generated from the shipper's record structs.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
