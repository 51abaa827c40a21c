"""Display filters in Wireshark's syntax, evaluated on columns.

    f = DisplayFilter("tcp.flags.syn == 1 && tcp.analysis.ack_rtt > 0.2", PACKET_FIELDS)
    keep = f.mask(columns)            # one bool per row, numpy all the way

The grammar (Wireshark 4's, for what tcpscope's fields can be)::

    expr    := expr ("||" | "or") expr | expr ("^^" | "xor") expr
             | expr ("&&" | "and") expr | ("!" | "not") expr | "(" expr ")" | test
    test    := FIELD                                  the field is present
             | FIELD relop value                      == eq  != ne  > gt  < lt  >= ge  <= le
                                                      === all_eq  ~= any_ne
             | FIELD "&" value                        bitwise and is not zero
             | FIELD "in" "{" item ([","] item)* "}"  item: value or value..value
    value   := a literal (number, address, CIDR, string "...", true/false) | FIELD

Precedence: not, then and, then xor, then or (Wireshark's). The parser is a
hand-written Pratt parser (binding powers below): the grammar is a dozen
rules, every token knows its column, and errors point at it exactly, with no
parser library to install or pin.

Semantics are Wireshark's: a field may occur several times in a row
(``tcp.port`` is both ports), ``==`` holds when any occurrence is equal, ``!=``
(``all_ne``) when every occurrence differs, ``~=`` when any differs; a test
of an absent field is false and ``!field`` is true when it is absent. A bare
boolean field is a presence test, as in Wireshark: ``tcp.flags.ack`` is
present in every TCP packet, so ``!tcp.flags.ack`` matches none (write
``tcp.flags.ack == 0``; `warnings` says so).
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .fields import Columns, Field, FieldTable, Occurrences

__all__ = ["DisplayFilter", "DisplayFilterError"]


class DisplayFilterError(ValueError):
    """A display filter that cannot be used: `column` (0-based) points at the mistake."""

    def __init__(self, message: str, expression: str, column: int, width: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression
        self.column = column
        self.width = max(1, width)

    def pointed(self) -> str:
        """The message, the expression and a caret under the mistake (as tshark shows it)."""
        return (f"{self.message}\n    {self.expression}\n"
                f"    {' ' * self.column}^{'~' * (self.width - 1)}")


# ---------------------------------------------------------------------------- tokens

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<op>===|==|!=|~=|>=|<=|&&|\|\||\^\^|[<>!(){},&~])
  | (?P<word>[A-Za-z0-9_.:/\-]+)
""", re.VERBOSE)

_WORD_OPS = {"eq": "==", "ne": "!=", "gt": ">", "lt": "<", "ge": ">=", "le": "<=",
             "and": "&&", "or": "||", "xor": "^^", "not": "!", "all_eq": "===", "any_ne": "~=",
             "in": "in", "contains": "contains", "matches": "matches", "bitwise_and": "&"}
RELOPS = ("==", "!=", ">", "<", ">=", "<=", "===", "~=")


@dataclass(frozen=True)
class Token:
    kind: str      #: "op", "word", "string", "end"
    text: str
    col: int


def tokenize(expression: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(expression):
        m = _TOKEN.match(expression, pos)
        if m is None:
            raise DisplayFilterError(f'"{expression[pos]}" was unexpected in this context',
                                     expression, pos)
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "word" and text.lower() in _WORD_OPS:
            kind, text = "op", _WORD_OPS[text.lower()]
        if kind != "space":
            tokens.append(Token(kind, text, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(expression)))
    return tokens


# ---------------------------------------------------------------------------- the tree

Eval = Callable[[Columns], np.ndarray]

#: binding powers of the infix operators (higher binds tighter); `not` binds at 40
_INFIX = {"||": 10, "^^": 20, "&&": 30}
_NOT_POWER = 40


class _Parser:
    def __init__(self, expression: str, fields: FieldTable) -> None:
        self.expression = expression
        self.fields = fields
        self.tokens = tokenize(expression)
        self.i = 0
        self.warnings: list[str] = []
        self.used: set[str] = set()

    def error(self, message: str, tok: Token) -> DisplayFilterError:
        return DisplayFilterError(message, self.expression, tok.col, len(tok.text))

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> Token:
        tok = self.take()
        if tok.kind != "op" or tok.text != text:
            raise self.error(f'"{text}" was expected here' if tok.kind != "end"
                             else f'the expression ends where "{text}" was expected', tok)
        return tok

    # Pratt: parse(power) reads a prefix, then infix operators that bind tighter
    def parse(self, power: int = 0) -> Eval:
        left = self.prefix()
        while self.tok.kind == "op" and _INFIX.get(self.tok.text, 0) > power:
            op = self.take().text
            right = self.parse(_INFIX[op])
            left = _combine(op, left, right)
        return left

    def prefix(self) -> Eval:
        tok = self.take()
        if tok.kind == "op" and tok.text == "!":
            inner = self.parse(_NOT_POWER)
            return lambda cols: ~inner(cols)
        if tok.kind == "op" and tok.text == "(":
            inner = self.parse()
            self.expect(")")
            return inner
        if tok.kind == "word":
            return self.test(tok)
        if tok.kind == "end":
            raise self.error("the expression ends where a field was expected", tok)
        raise self.error(f'"{tok.text}" was unexpected in this context', tok)

    def field(self, tok: Token) -> Field:
        f = self.fields.get(tok.text)
        if f is None:
            hint = self.fields.suggest(tok.text)
            raise self.error(f'"{tok.text}" is neither a field nor a protocol name'
                             + (f" (did you mean {hint}?)" if hint else ""), tok)
        self.used.add(f.name)
        return f

    def test(self, tok: Token) -> Eval:
        f = self.field(tok)
        nxt = self.tok
        if nxt.kind == "op" and nxt.text in RELOPS:
            self.take()
            if f.type == "none":
                raise self.error(f"{f.name} is a flag: it is present or not, and has no "
                                 "value to compare (test it alone)", nxt)
            value = self.value(f)
            return _relation(f, nxt.text, value)
        if nxt.kind == "op" and nxt.text == "&":
            self.take()
            if f.type not in ("uint", "int", "bool"):
                raise self.error(f'"&" needs an integer field; {f.name} is not one', nxt)
            mask = self.value(f)
            return _bitand(f, mask)
        if nxt.kind == "op" and nxt.text == "in":
            self.take()
            return self.membership(f)
        if nxt.kind == "op" and nxt.text in ("contains", "matches"):
            raise self.error(f'"{nxt.text}" is not supported on tcpscope\'s fields', nxt)
        if f.type == "bool" and f.always:
            self.warnings.append(
                f"{f.name} is present in every {f.always} packet (Wireshark tests presence): "
                f"to test its value write {f.name} == 1 or {f.name} == 0")
        return lambda cols: _present(f.occurrences(cols))

    def value(self, f: Field) -> Callable[[Columns], Occurrences] | object:
        tok = self.take()
        if tok.kind == "word" and tok.text in self.fields and not _looks_literal(f, tok.text):
            other = self.field(tok)
            if other.type != f.type and {other.type, f.type} - {"uint", "int", "float", "bool"}:
                raise self.error(f"{f.name} and {other.name} are of different types", tok)
            return other
        if tok.kind not in ("word", "string"):
            raise self.error(f"a value for {f.name} was expected here", tok)
        return self.literal(f, tok)

    def literal(self, f: Field, tok: Token) -> object:
        text = tok.text[1:-1].encode().decode("unicode_escape") if tok.kind == "string" \
            else tok.text
        try:
            return f.parse(text)
        except ValueError as exc:
            raise self.error(f'"{text}" is not a valid value for {f.name}: {exc}', tok) from None

    def membership(self, f: Field) -> Eval:
        self.expect("{")
        items: list[tuple[object, object]] = []
        while True:
            tok = self.tok
            if tok.kind == "op" and tok.text == "}":
                self.take()
                break
            if tok.kind == "op" and tok.text == ",":
                self.take()
                continue
            if tok.kind not in ("word", "string"):
                raise self.error('a value or "}" was expected here', tok)
            self.take()
            if tok.kind == "word" and ".." in tok.text and f.type in ("uint", "int", "float"):
                lo_text, hi_text = tok.text.split("..", 1)
                lo = self.literal(f, Token("word", lo_text, tok.col))
                hi = self.literal(f, Token("word", hi_text, tok.col + len(lo_text) + 2))
                items.append((lo, hi))
            else:
                v = self.literal(f, tok)
                items.append((v, v))
        if not items:
            raise self.error("an empty set matches nothing", self.tokens[self.i - 1])
        return _in_set(f, items)

    def run(self) -> Eval:
        ev = self.parse()
        if self.tok.kind != "end":
            raise self.error(f'"{self.tok.text}" was unexpected in this context', self.tok)
        return ev


def _looks_literal(f: Field, text: str) -> bool:
    try:
        f.parse(text)
        return True
    except ValueError:
        return False


def _combine(op: str, a: Eval, b: Eval) -> Eval:
    if op == "&&":
        return lambda cols: a(cols) & b(cols)
    if op == "||":
        return lambda cols: a(cols) | b(cols)
    return lambda cols: a(cols) ^ b(cols)


def _present(occ: Occurrences) -> np.ndarray:
    out = occ[0][1].copy()
    for _, present in occ[1:]:
        out |= present
    return out


def _relation(f: Field, op: str, value: object) -> Eval:
    def ev(cols: Columns) -> np.ndarray:
        occ = f.occurrences(cols)
        if isinstance(value, Field):
            rhs = value.occurrences(cols)
            out = np.zeros(cols.n, dtype=bool)
            for lv, lp in occ:
                for rv, rp in rhs:
                    out |= lp & rp & _numeric_op(op, lv, rv)
            return out
        if op in ("!=", "==="):
            # every occurrence that is present must hold, and one must be present
            base = "==" if op == "===" else "!="
            anyp = np.zeros(cols.n, dtype=bool)
            allok = np.ones(cols.n, dtype=bool)
            for v, p in occ:
                anyp |= p
                allok &= ~p | f.compare(v, base, value)
            return anyp & allok
        base = "!=" if op == "~=" else op
        out = np.zeros(cols.n, dtype=bool)
        for v, p in occ:
            out |= p & f.compare(v, base, value)
        return out

    return ev


def _numeric_op(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    op = {"===": "==", "~=": "!="}.get(op, op)
    return {"==": np.equal, "!=": np.not_equal, ">": np.greater, "<": np.less,
            ">=": np.greater_equal, "<=": np.less_equal}[op](a, b)


def _bitand(f: Field, mask: object) -> Eval:
    m = int(mask)  # type: ignore[call-overload]

    def ev(cols: Columns) -> np.ndarray:
        out = np.zeros(cols.n, dtype=bool)
        for v, p in f.occurrences(cols):
            out |= p & ((v.astype(np.int64) & m) != 0)
        return out

    return ev


def _in_set(f: Field, items: list[tuple[object, object]]) -> Eval:
    def ev(cols: Columns) -> np.ndarray:
        out = np.zeros(cols.n, dtype=bool)
        for v, p in f.occurrences(cols):
            hit = np.zeros(cols.n, dtype=bool)
            for lo, hi in items:
                if lo is hi:
                    hit |= f.compare(v, "==", lo)
                else:
                    hit |= f.compare(v, ">=", lo) & f.compare(v, "<=", hi)
            out |= p & hit
        return out

    return ev


class DisplayFilter:
    """A compiled display filter over a `FieldTable` (packet or connection fields).

    ``fields_used``: the fields it reads; ``needs_analysis`` / ``needs_states``: whether
    those come from the analysis or the endpoint states; ``warnings``: what a Wireshark
    user may not expect (a bare always-present boolean).
    """

    def __init__(self, expression: str, fields: FieldTable) -> None:
        self.expression = expression
        if not expression.strip():
            raise DisplayFilterError("the display filter is empty", expression, 0)
        parser = _Parser(expression, fields)
        self._eval = parser.run()
        self.warnings = parser.warnings
        self.fields_used = frozenset(parser.used)
        layers = {fields[name].layer for name in self.fields_used}
        self.needs_states = "states" in layers
        self.needs_analysis = self.needs_states or "analysis" in layers

    def mask(self, cols: Columns) -> np.ndarray:
        return np.asarray(self._eval(cols), dtype=bool)


def parse_network(text: str, version: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An address or CIDR block of IP `version` (ValueError otherwise)."""
    net = ipaddress.ip_network(text, strict=False)
    if net.version != version:
        raise ValueError(f"an IPv{version} address was expected")
    return net
