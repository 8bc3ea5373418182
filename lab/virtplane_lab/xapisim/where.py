"""The expression language of ``<class>.get_all_records_where`` (XAPI's db_filter: ocaml/database/
db_filter_lex.mll and db_filter_parse.mly in xapi-project/xen-api).

Tokens: ``=``, ``true``, ``false``, ``(``, ``)``, ``field``, ``and``, ``or``, ``not``, and double-quoted strings
(no escapes). A value is ``"literal"`` or ``field "name"``; an expression is ``value = value``, ``expr and expr``,
``expr or expr`` (equal precedence, left to right), ``not expr``, ``true``, ``false`` or ``( expr )``. Values
compare as strings: a bool field is ``"true"``/``"false"``, a ref its OpaqueRef, an int its digits. A malformed
expression is INVALID_VALUE [expression, reason] (ocaml/xapi/exnHelper.ml); so is a field the class does not have
(the reason text is the simulator's own).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import XapiError

_TOKEN = re.compile(r'\s*(?:(=)|(\()|(\))|"([^"]*)"|([a-z]+))')
_WORDS = {"true", "false", "field", "and", "or", "not"}
Predicate = Callable[[dict[str, Any]], bool]


def compile_where(text: str) -> Predicate:
    tokens = _tokens(text)
    parser = _Parser(tokens, text)
    predicate = parser.expression()
    if parser.position != len(tokens):
        raise XapiError("INVALID_VALUE", text, "Parsing.Parse_error")
    return predicate


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or (match.group(5) is not None and match.group(5) not in _WORDS):
            raise XapiError("INVALID_VALUE", text, "Failure(\"lexing: empty token\")")
        position = match.end()
        if match.group(1):
            tokens.append(("=", "="))
        elif match.group(2):
            tokens.append(("(", "("))
        elif match.group(3):
            tokens.append((")", ")"))
        elif match.group(4) is not None:
            tokens.append(("string", match.group(4)))
        else:
            tokens.append((match.group(5), match.group(5)))
    return tokens


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens = tokens
        self.position = 0
        self.text = text

    def _peek(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def _take(self, kind: str) -> str:
        if self._peek() != kind:
            raise XapiError("INVALID_VALUE", self.text, "Parsing.Parse_error")
        value = self.tokens[self.position][1]
        self.position += 1
        return value

    def expression(self) -> Predicate:
        left = self._unary()
        while self._peek() in ("and", "or"):
            operator = self._take(self._peek() or "")
            right = self._unary()
            left = _combine(operator, left, right)
        return left

    def _unary(self) -> Predicate:
        kind = self._peek()
        if kind == "not":
            self._take("not")
            inner = self._unary()
            return lambda record: not inner(record)
        if kind in ("true", "false"):
            self._take(kind)
            result = kind == "true"
            return lambda record: result
        if kind == "(":
            self._take("(")
            inner = self.expression()
            self._take(")")
            return inner
        left = self._value()
        self._take("=")
        right = self._value()
        return lambda record: left(record) == right(record)

    def _value(self) -> Callable[[dict[str, Any]], str]:
        if self._peek() == "field":
            self._take("field")
            name = self._take("string")
            text = self.text

            def lookup(record: dict[str, Any]) -> str:
                if name not in record:  # XAPI's database has no such column: refuse, never match silently
                    raise XapiError("INVALID_VALUE", text, f"unknown field {name}")
                return _text(record[name])

            return lookup
        literal = self._take("string")
        return lambda record: literal


def _combine(operator: str, left: Predicate, right: Predicate) -> Predicate:
    if operator == "and":
        return lambda record: left(record) and right(record)
    return lambda record: left(record) or right(record)
