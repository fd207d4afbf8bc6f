"""Splunk's side, without a Splunk: .conf files, search-time field extraction of a JSON event
(KV_MODE=json, FIELDALIAS, EVAL in Splunk's order), an interpreter for the eval functions the app
uses, an evaluator for eventtype searches, and the fields a saved search reads.

What it follows from Splunk's documentation:
- .conf: `[stanza]`, `key = value`, a trailing backslash continues the line, `#` comments;
- KV_MODE=json names nested fields a.b and array members a{} (a{}.b inside arrays of objects);
  JSON null becomes the text "null", true/false their text, numbers their JSON text;
- search-time order: field extraction, FIELDALIAS (AS overwrites, ASNEW only fills an empty
  field), then every EVAL-x on the fields as they were before the EVALs (they cannot see each
  other), then eventtypes and tags;
- eval: null propagates through functions, a comparison with null is false, case() takes the
  first true condition, in() compares with the listed values, match() is an unanchored PCRE search.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

Value = Any  # None | str | list[str] (multivalue) | bool (inside conditions)


# -- .conf ------------------------------------------------------------------------------------------
def parse_conf(text: str) -> dict[str, dict[str, str]]:
    """Stanzas of a Splunk .conf file; a key set twice in one stanza is an error (Splunk keeps one)."""
    stanzas: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + "\n" + lines[i]
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = re.fullmatch(r"\[(.+)\]", stripped)
        if m:
            if m.group(1) in stanzas:
                raise ValueError(f"stanza [{m.group(1)}] twice")
            current = stanzas[m.group(1)] = {}
            continue
        if current is None or "=" not in line:
            raise ValueError(f"not a setting inside a stanza: {line!r}")
        key, _, value = line.partition("=")
        key = key.strip()
        if key in current:
            raise ValueError(f"{key} set twice")
        current[key] = value.strip()
    return stanzas


# -- KV_MODE=json -------------------------------------------------------------------------------------
def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def kv_json(doc: dict[str, Any]) -> dict[str, Value]:
    """The fields automatic JSON extraction gives an event (multivalue as lists)."""
    out: dict[str, list[str]] = {}

    def walk(node: Any, name: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{name}.{k}" if name else k)
        elif isinstance(node, list):
            for v in node:
                walk(v, f"{name}{{}}")
        elif node != "":
            out.setdefault(name, []).append(_text(node))

    walk(doc, "")
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


@lru_cache(maxsize=64)
def _load(raw: str) -> Any:
    return json.loads(raw)


@lru_cache(maxsize=4096)
def spath(raw: str, path: str) -> Value:
    """eval spath(_raw, path): a.b for objects, a{} for every member of an array."""
    values: list[Any] = [_load(raw)]
    for part in path.split("."):
        m = re.fullmatch(r"([^{}]+)((?:\{\})*)", part)
        if m is None:
            raise ValueError(f"spath path this interpreter does not read: {path!r}")
        nxt: list[Any] = []
        for v in values:
            if isinstance(v, dict) and m.group(1) in v:
                nxt.append(v[m.group(1)])
        for _ in range(len(m.group(2)) // 2):
            nxt = [x for v in nxt if isinstance(v, list) for x in v]
        values = nxt
    texts = [json.dumps(v) if isinstance(v, (dict, list)) else _text(v) for v in values]
    return None if not texts else texts[0] if len(texts) == 1 else texts


# -- eval expressions -------------------------------------------------------------------------------------
_TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<qfield>'[^']+')|(?P<num>\d+(?:\.\d+)?)|"""
                    r"""(?P<op>==|!=|<=|>=|=|<|>|\(|\)|,|\+|-)|(?P<word>[A-Za-z_][\w.{}]*))""")


@dataclass
class Tok:
    kind: str
    text: str


def tokenize(expr: str) -> list[Tok]:
    toks, pos = [], 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot read eval expression at {expr[pos:pos + 30]!r}")
        kind = m.lastgroup or ""
        toks.append(Tok(kind, m.group(kind)))
        pos = m.end()
    return toks


class Parser:
    """expr := or; or := and (OR and)*; and := not (AND not)*; not := NOT not | cmp; cmp := atom (op atom)?"""

    def __init__(self, expr: str) -> None:
        self.toks = tokenize(expr)
        self.i = 0

    def parse(self) -> Any:
        node = self.or_()
        if self.i != len(self.toks):
            raise ValueError(f"trailing tokens {[t.text for t in self.toks[self.i:]]}")
        return node

    def peek(self, text: str | None = None) -> Tok | None:
        tok = self.toks[self.i] if self.i < len(self.toks) else None
        if tok is not None and text is not None and tok.text.upper() != text:
            return None
        return tok

    def take(self, text: str | None = None) -> Tok:
        tok = self.peek(text)
        if tok is None:
            raise ValueError(f"expected {text!r} at token {self.i}")
        self.i += 1
        return tok

    def or_(self) -> Any:
        node = self.and_()
        while self.peek("OR") and self.peek().kind == "word":  # type: ignore[union-attr]
            self.take()
            node = ("or", node, self.and_())
        return node

    def and_(self) -> Any:
        node = self.not_()
        while self.peek("AND") and self.peek().kind == "word":  # type: ignore[union-attr]
            self.take()
            node = ("and", node, self.not_())
        return node

    def not_(self) -> Any:
        if self.peek("NOT") and self.peek().kind == "word":  # type: ignore[union-attr]
            self.take()
            return ("not", self.not_())
        node = self.sum_()
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.text in ("==", "=", "!=", "<", ">", "<=", ">="):
            self.take()
            node = ("cmp", "==" if tok.text == "=" else tok.text, node, self.sum_())
        return node

    def sum_(self) -> Any:
        node = self.atom()
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.text in ("+", "-"):
            self.take()
            node = ("arith", tok.text, node, self.atom())
        return node

    def atom(self) -> Any:
        tok = self.take()
        if tok.kind == "str":  # SPL strings: \" and \\ are escapes, any other backslash stays (regexes)
            return ("lit", re.sub(r'\\(["\\])', r"\1", tok.text[1:-1]))
        if tok.kind == "num":
            return ("lit", tok.text)
        if tok.kind == "qfield":
            return ("field", tok.text[1:-1])
        if tok.kind == "op" and tok.text == "(":
            node = self.or_()
            self.take(")")
            return node
        if tok.kind == "word" and self.peek("(") is not None:
            self.take("(")
            args = []
            if self.peek(")") is None:
                args.append(self.or_())
                while self.peek(","):
                    self.take(",")
                    args.append(self.or_())
            self.take(")")
            return ("call", tok.text.lower(), args)
        if tok.kind == "word":
            return ("field", tok.text)
        raise ValueError(f"unexpected token {tok.text!r}")


def _first(v: Value) -> Any:
    return v[0] if isinstance(v, list) and v else v


def _true(v: Value) -> bool:
    return v is True


def _map(v: Value, fn: Callable[[str], Any]) -> Value:
    if v is None:
        return None
    return [fn(x) for x in v] if isinstance(v, list) else fn(v)


FUNCTIONS = {"coalesce", "if", "case", "in", "match", "lower", "upper", "replace", "spath", "mvindex", "nullif",
             "isnull", "isnotnull", "true", "null"}


def evaluate(node: Any, fields: dict[str, Value]) -> Value:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "field":
        return fields.get(node[1])
    if kind == "and":
        return _true(evaluate(node[1], fields)) and _true(evaluate(node[2], fields))
    if kind == "or":
        return _true(evaluate(node[1], fields)) or _true(evaluate(node[2], fields))
    if kind == "not":
        return not _true(evaluate(node[1], fields))
    if kind == "arith":
        a, b = evaluate(node[2], fields), evaluate(node[3], fields)
        if a is None or b is None:
            return None
        x, y = float(_first(a)), float(_first(b))
        r = x + y if node[1] == "+" else x - y
        return str(int(r)) if r.is_integer() else str(r)
    if kind == "cmp":
        a, b = evaluate(node[2], fields), evaluate(node[3], fields)
        if a is None or b is None:
            return False
        a, b = _first(a), _first(b)
        try:  # numbers compare as numbers, as in Splunk
            a, b = float(a), float(b)
        except (TypeError, ValueError):
            a, b = str(a), str(b)
        return {"==": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[node[1]]
    return _call(node[1], node[2], fields)


def _call(name: str, args: list[Any], fields: dict[str, Value]) -> Value:  # noqa: C901 - one dispatch
    ev = [lambda a=a: evaluate(a, fields) for a in args]  # lazy, as case() and if() are
    if name == "coalesce":
        return next((v for f in ev if (v := f()) is not None), None)
    if name == "if":
        return ev[1]() if _true(ev[0]()) else ev[2]()
    if name == "case":
        for cond, val in zip(ev[0::2], ev[1::2], strict=True):
            if _true(cond()):
                return val()
        return None
    if name == "in":
        x = ev[0]()
        wanted = [f() for f in ev[1:]]
        return x is not None and any(v in wanted for v in (x if isinstance(x, list) else [x]))
    if name == "match":
        x, pattern = ev[0](), ev[1]()
        return x is not None and any(re.search(pattern, v) for v in (x if isinstance(x, list) else [x]))
    if name in ("lower", "upper"):
        return _map(ev[0](), str.lower if name == "lower" else str.upper)
    if name == "replace":
        x, pattern, repl = ev[0](), ev[1](), ev[2]()
        return _map(x, lambda v: re.sub(pattern, repl, v))
    if name == "spath":
        raw = ev[0]()
        return None if raw is None else spath(raw, ev[1]())
    if name == "mvindex":
        x, i = ev[0](), int(ev[1]())
        items = x if isinstance(x, list) else [] if x is None else [x]
        return items[i] if -len(items) <= i < len(items) else None
    if name == "nullif":
        a, b = ev[0](), ev[1]()
        return None if a == b else a
    if name == "isnull":
        return ev[0]() is None
    if name == "isnotnull":
        return ev[0]() is not None
    if name == "true":
        return True
    if name == "null":
        return None
    raise ValueError(f"eval function {name}() is not known to this interpreter")


def eval_fields(node: Any) -> set[str]:
    """The fields an eval expression reads."""
    if node[0] == "field":
        return {node[1]}
    if node[0] == "lit":
        return set()
    children = node[2] if node[0] == "call" else node[2:] if node[0] in ("cmp", "arith") else node[1:]
    return {f for c in children if isinstance(c, tuple) for f in eval_fields(c)}


def eval_functions(node: Any) -> set[str]:
    if node[0] in ("field", "lit"):
        return set()
    children = node[2] if node[0] == "call" else node[1:]
    own = {node[1]} if node[0] == "call" else set()
    return own | {f for c in children if isinstance(c, tuple) for f in eval_functions(c)}


# -- search time -------------------------------------------------------------------------------------------
def aliases(stanza: dict[str, str]) -> list[tuple[str, str, str]]:
    """(source, AS|ASNEW, destination) of every FIELDALIAS- setting."""
    out = []
    for key, value in stanza.items():
        if key.startswith("FIELDALIAS-"):
            words = value.split()
            for i in range(0, len(words), 3):
                src, how, dest = words[i:i + 3]
                if how.upper() not in ("AS", "ASNEW"):
                    raise ValueError(f"{key}: {how!r} is not AS or ASNEW")
                out.append((src, how.upper(), dest))
    return out


def evals(stanza: dict[str, str]) -> dict[str, Any]:
    return {key.removeprefix("EVAL-"): Parser(value).parse() for key, value in stanza.items()
            if key.startswith("EVAL-")}


class Props:
    """One props.conf stanza, parsed once: what search time does to an event of its sourcetype."""

    def __init__(self, stanza: dict[str, str]) -> None:
        self.kv_json = stanza.get("KV_MODE") == "json"
        self.aliases = aliases(stanza)
        self.evals = evals(stanza)

    def fields(self, doc: dict[str, Any], raw: str) -> dict[str, Value]:
        return search_time(doc, raw, self)


def search_time(doc: dict[str, Any], raw: str, props: Props) -> dict[str, Value]:
    """The fields of one event at search time, as the sourcetype's props stanza makes them."""
    fields: dict[str, Value] = kv_json(doc) if props.kv_json else {}
    fields["_raw"] = raw
    for src, how, dest in props.aliases:
        if src in fields and (how == "AS" or fields.get(dest) is None):
            fields[dest] = fields[src]
    before = dict(fields)
    for name, node in props.evals.items():
        value = evaluate(node, before)
        if value is None or value is False or value == []:
            fields.pop(name, None)
        else:
            fields[name] = value
    return fields


# -- searches -----------------------------------------------------------------------------------------------
_TERM = re.compile(r'\s*(?:(?P<paren>[()])|(?P<kw>AND|OR|NOT)\b|(?P<field>[\w.{}]+)\s*(?P<op>!=|=)\s*'
                   r'(?P<value>"(?:[^"\\]|\\.)*"|[^\s()]+))')


def search_terms(search: str) -> list[tuple[str, str, str] | str]:
    """field=value / field!=value terms, parentheses and AND/OR/NOT of a simple search."""
    out: list[tuple[str, str, str] | str] = []
    pos = 0
    while search[pos:].strip():
        m = _TERM.match(search, pos)
        if m is None:
            raise ValueError(f"cannot read search at {search[pos:pos + 40]!r}")
        if m.group("paren") or m.group("kw"):
            out.append(m.group("paren") or m.group("kw"))
        else:
            value = m.group("value")
            out.append((m.group("field"), m.group("op"), json.loads(value) if value.startswith('"') else value))
        pos = m.end()
    return out


def _glob(pattern: str, value: str) -> bool:
    regex = ".*".join(re.escape(p) for p in pattern.split("*"))
    return re.fullmatch(regex, value, re.IGNORECASE) is not None


def matches(search: str, fields: dict[str, Value], eventtypes: dict[str, str] | None = None) -> bool:
    """Whether an event's fields match a simple search (terms, AND/OR/NOT, parentheses, eventtype=)."""
    terms = search_terms(search)
    pos = 0

    def term(t: tuple[str, str, str]) -> bool:
        name, op, pattern = t
        if name == "eventtype":
            return matches((eventtypes or {})[pattern], fields, eventtypes)
        value = fields.get(name)
        values = value if isinstance(value, list) else [] if value is None else [value]
        hit = any(_glob(pattern, v) for v in values)
        return hit if op == "=" else (bool(values) and not hit)

    def or_() -> bool:
        nonlocal pos
        result = and_()
        while pos < len(terms) and terms[pos] == "OR":
            pos += 1
            result = and_() or result
        return result

    def and_() -> bool:
        nonlocal pos
        result = True
        while pos < len(terms) and terms[pos] not in ("OR", ")"):
            if terms[pos] == "AND":
                pos += 1
            result = not_() and result
        return result

    def not_() -> bool:
        nonlocal pos
        t = terms[pos]
        pos += 1
        if t == "NOT":
            return not not_()
        if t == "(":
            inner = or_()
            pos += 1  # ")"
            return inner
        assert isinstance(t, tuple)
        return term(t)

    return or_()


# -- what a saved search reads ---------------------------------------------------------------------------
TIME_MODIFIERS = {"earliest", "latest", "index", "sourcetype", "source", "host", "eventtype", "tag"}
_AGG = re.compile(r"(\w+)(?:\(([\w.{}]*)\))?(?:\s+AS\s+(\w+))?", re.IGNORECASE)


def pipeline(search: str) -> list[str]:
    """The commands of a search, split at the pipes outside quotes."""
    parts, buf, quoted = [], "", False
    for ch in search:
        if ch == '"' and not buf.endswith("\\"):
            quoted = not quoted
        if ch == "|" and not quoted:
            parts.append(buf.strip())
            buf = ""
        else:
            buf += ch
    parts.append(buf.strip())
    return parts


@dataclass
class SearchFields:
    reads: set[str]
    defines: set[str]
    lookups: list[tuple[str, str, list[str]]]  # (lookup, its input column, its output columns)
    eventtypes: set[str]


def search_fields(search: str) -> SearchFields:  # noqa: C901 - one branch per command
    """The fields a saved search reads before it defines them, command by command."""
    reads: set[str] = set()
    defined: set[str] = {"_time", "_raw"}
    lookups: list[tuple[str, str, list[str]]] = []
    eventtypes: set[str] = set()

    def read(names: set[str]) -> None:
        reads.update(n for n in names if n not in defined)

    for i, cmd in enumerate(pipeline(search)):
        if i == 0:
            for t in search_terms(cmd):
                if isinstance(t, tuple):
                    if t[0] == "eventtype":
                        eventtypes.add(t[2])
                    elif t[0] not in TIME_MODIFIERS:
                        read({t[0]})
            continue
        name, _, rest = cmd.partition(" ")
        if name in ("table", "fields", "dedup"):
            read(set(re.findall(r"[\w.{}]+", rest)))
        elif name == "eval":
            target, _, expr = rest.partition("=")
            read(eval_fields(Parser(expr).parse()))
            defined.add(target.strip())
        elif name == "where":
            read(eval_fields(Parser(rest).parse()))
        elif name == "bin":
            read({rest.split()[0]})
        elif name in ("stats", "eventstats", "streamstats"):
            parts = re.split(r"\s+BY\s+", rest, maxsplit=1, flags=re.IGNORECASE)
            aggs, by = parts[0], parts[1] if len(parts) > 1 else ""
            by_fields = set(re.findall(r"[\w.{}]+", by))
            read(by_fields)
            for m in _AGG.finditer(aggs):
                fn, arg, alias = m.groups()
                if arg:
                    read({arg})
                defined.add(alias or (f"{fn}({arg})" if arg else fn))
            defined.update(by_fields)
        elif name == "lookup":
            m = re.fullmatch(r"(\w+)\s+(\w+)(?:\s+AS\s+([\w.{}]+))?\s+OUTPUT(?:NEW)?\s+(.+)", rest, re.IGNORECASE)
            if m is None:
                raise ValueError(f"cannot read lookup command {cmd!r}")
            table, column, field_, outputs = m.groups()
            read({field_ or column})
            outs = re.findall(r"(\w+)(?:\s+AS\s+(\w+))?", outputs)
            lookups.append((table, column, [o for o, _ in outs]))
            defined.update(alias or o for o, alias in outs)
        else:
            raise ValueError(f"command {name!r} is not known to this reader: extend search_fields")
    return SearchFields(reads, defined, lookups, eventtypes)
