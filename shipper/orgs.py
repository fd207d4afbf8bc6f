"""Many orgs from one config: the top-level sections are every org's defaults, and each entry of
`orgs:` overrides them key by key. A config without `orgs:` is one org with no name, as before.

```yaml
poll: {interval: 60s}
orgs:
  - name: prod-eu
    genesys: {region: eu-central-1, client_id: ..., client_secret_file: ...}
  - name: sandbox
    genesys: {...}
    poll: {start_from: 7d}
```
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Config, interpolate, parse_yaml_file, validate
from .errors import ConfigError

ORG_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")
SECTIONS = ("genesys", "poll", "rate_limit", "state", "output", "filters", "routing", "metrics")
# One writer and one metrics file serve every org: these stay top-level.
SHARED_KEYS = {"output": ("path", "http", "rotate_bytes", "keep_files"), "metrics": ("textfile", "stats_interval"),
               "state": ("backend", "etcd")}
MAX_PARALLEL_DEFAULT = 8


@dataclass(frozen=True)
class Org:
    name: str  # "" for the one org of a config without `orgs:`
    cfg: Config


@dataclass(frozen=True)
class Deployment:
    defaults: Config
    orgs: list[Org]
    max_parallel: int
    named: bool  # the config lists `orgs:`

    @property
    def org_names(self) -> list[str]:
        """Every org's name as the state backends key it ("default" for the one unnamed org)."""
        return [o.name or "default" for o in self.orgs]

    def org(self, name: str | None) -> list[Org]:
        """Every org, or the one called `name` (ConfigError when there is none)."""
        if name is None:
            return self.orgs
        found = [o for o in self.orgs if o.name == name]
        if not found:
            names = ", ".join(o.name for o in self.orgs) or "(none: this config has no orgs: list)"
            raise ConfigError(f"--org {name!r} is not in the config; its orgs are {names}")
        return found


def _merge(defaults: dict[str, Any], own: dict[str, Any], where: str) -> dict[str, Any]:
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in defaults.items()}
    for section, values in own.items():
        if section not in SECTIONS:
            raise ConfigError(f"{where}.{section}: unknown section; an org may set {', '.join(SECTIONS)} and name")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}.{section}: must be a mapping of keys, as at the top level")
        for key in SHARED_KEYS.get(section, ()):
            if key in values:
                raise ConfigError(f"{where}.{section}.{key}: one writer and one metrics file serve every org; "
                                  f"set {section}.{key} at the top level")
        merged[section] = {**merged.get(section, {}), **values}
    return merged


def _default_state(path: str, name: str) -> str:
    p = Path(path)
    return str(p.with_name(f"{p.stem}.{name}{p.suffix or '.json'}"))


def deployment_from_mapping(data: Any, source: str = "config", env: dict[str, str] | None = None) -> Deployment:
    doc = interpolate(data, source, env)
    entries = doc.pop("orgs", None)
    parallel = doc.pop("max_parallel_orgs", None)
    defaults = validate(doc, source)
    if entries is None:
        if parallel is not None:
            raise ConfigError(f"{source}: max_parallel_orgs needs an orgs: list")
        return Deployment(defaults, [Org("", defaults)], 1, named=False)
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: orgs must be a list of orgs, each with a name and its genesys: section")
    orgs: list[Org] = []
    for i, entry in enumerate(entries):
        where = f"orgs[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: {where} must be a mapping (name:, genesys:, ...)")
        own = dict(entry)
        name = own.pop("name", None)
        if not isinstance(name, str) or not ORG_NAME.match(name):
            raise ConfigError(f"{source}: {where}.name must be 1-64 of a-z, 0-9, _ and -, got {name!r}")
        if any(o.name == name for o in orgs):
            raise ConfigError(f"{source}: {where}.name {name!r} is used twice; org names are unique")
        merged = _merge(doc, own, where)
        if "path" not in own.get("state", {}):
            merged.setdefault("state", {})["path"] = _default_state(defaults.state.path, name)
        cfg = validate(merged, source, f"{where}.")
        _check_credentials(cfg, f"{source}: {where}.")
        orgs.append(Org(name, cfg))
    if defaults.state.backend == "file":
        _distinct_states(orgs, source)
    default_parallel = min(len(orgs), MAX_PARALLEL_DEFAULT)
    if parallel is not None and (not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1):
        raise ConfigError(f"{source}: max_parallel_orgs must be a whole number from 1, e.g. {default_parallel}")
    return Deployment(defaults, orgs, parallel or default_parallel, named=True)


def _check_credentials(cfg: Config, where: str) -> None:
    g = cfg.genesys
    if not g.client_id:
        raise ConfigError(f"{where}genesys.client_id is not set: set it, e.g. to ${{PROD_CLIENT_ID}}")
    if not (g.client_secret or g.client_secret_file):
        raise ConfigError(f"{where}genesys.client_secret is not set: set it or genesys.client_secret_file")


def _distinct_states(orgs: list[Org], source: str) -> None:
    seen: dict[str, str] = {}
    for i, org in enumerate(orgs):
        path = os.path.abspath(org.cfg.state.path)
        if path in seen:
            raise ConfigError(f"{source}: orgs[{i}].state.path is also {seen[path]}'s; every org needs its own "
                              "state file")
        seen[path] = org.name


def load_deployment(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> Deployment:
    return deployment_from_mapping(parse_yaml_file(path), str(Path(path)), env)
