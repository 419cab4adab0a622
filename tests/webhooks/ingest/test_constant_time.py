"""Signatures are compared only through signing.any_matches, in every provider module.

A static check over the source: new provider modules are found by walking the
``webhooks.providers`` package, so they are covered without being listed here.
"""

from __future__ import annotations

import ast
import inspect
import pkgutil
import re
from types import ModuleType

import pytest

import webhooks.providers
from webhooks.providers import signing

#: Names that hold, or are derived from, a secret or a signature.
SENSITIVE = re.compile(
    r"secret|expected|digest|signature|signed|given|credential|mac|key",
    re.IGNORECASE,
)
#: Calls whose result is secret-derived bytes.
SENSITIVE_CALLS = {"hmac_digest", "digest", "hexdigest", "b64encode", "new"}


def provider_modules() -> list[ModuleType]:
    names = [
        f"webhooks.providers.{info.name}"
        for info in pkgutil.iter_modules(webhooks.providers.__path__)
        # signing holds any_matches itself: test_signing_compares_only_inside_any_matches.
        if info.name != "signing"
    ]
    modules = [__import__(name, fromlist=["_"]) for name in names]
    return [webhooks.providers, *modules]


def identifier(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return identifier(node.value)
    if isinstance(node, ast.Call):
        return identifier(node.func)
    return ""


def sensitive(node: ast.AST) -> bool:
    if isinstance(node, ast.Call):
        return identifier(node.func) in SENSITIVE_CALLS or any(
            sensitive(arg) for arg in node.args
        )
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return any(sensitive(element) for element in node.elts)
    return bool(SENSITIVE.search(identifier(node)))


def constant(node: ast.AST) -> bool:
    """A literal, or a tuple/set of literals, or an ALL_CAPS module constant."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return all(constant(element) for element in node.elts)
    name = identifier(node)
    return isinstance(node, ast.Name | ast.Attribute) and name.isupper()


#: Where a delivery's own bytes enter a function: its parameters by these names.
UNTRUSTED_ROOTS = {"delivery", "request", "headers", "body", "token"}


def untrusted_names(scope: ast.AST) -> set[str]:
    """Names in ``scope`` that hold what the sender chose, by assignment from a root."""
    tainted = set(UNTRUSTED_ROOTS)
    changed = True
    while changed:
        changed = False
        for node in ast.walk(scope):
            targets: list[ast.AST] = []
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign | ast.AugAssign) and node.value:
                targets, value = [node.target], node.value
            elif isinstance(node, ast.For | ast.comprehension):
                targets, value = [node.target], node.iter
            else:
                continue
            if not uses(value, tainted):
                continue
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and name.id not in tainted:
                        tainted.add(name.id)
                        changed = True
    return tainted


def uses(node: ast.AST, names: set[str]) -> bool:
    return any(
        isinstance(child, ast.Name) and child.id in names for child in ast.walk(node)
    )


def early_exit_comparisons(source: str) -> list[str]:
    """Where a secret-derived value meets what the sender chose in ==, !=, in or is.

    Those comparisons stop at the first differing byte, so their timing tells an
    attacker how much of a forged signature was right. Comparing with a literal
    (``key is not None``, ``scheme != "sha256"``) tests a value's shape, and
    values both derived from the secret reveal nothing; both are allowed. Direct
    ``compare_digest`` calls are refused too: any_matches is the one place.
    """
    found = []
    tree = ast.parse(source)
    functions = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
    ]
    for scope in [tree, *functions]:
        tainted = untrusted_names(scope)
        for node in ast.walk(scope):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            if (
                any(sensitive(operand) for operand in operands)
                and any(uses(operand, tainted) for operand in operands)
                and not any(constant(operand) for operand in operands)
            ):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and identifier(node.func) == "compare_digest":
            found.append(f"line {node.lineno}: {ast.unparse(node)} (use any_matches)")
    return sorted(set(found))


@pytest.mark.parametrize(
    "module", provider_modules(), ids=lambda module: module.__name__
)
def test_provider_compares_signatures_only_through_any_matches(module) -> None:
    assert early_exit_comparisons(inspect.getsource(module)) == []


def test_signing_compares_only_inside_any_matches() -> None:
    source = inspect.getsource(signing)
    tree = ast.parse(source)
    outside = [
        node
        for node in tree.body
        if not (isinstance(node, ast.FunctionDef) and node.name == "any_matches")
    ]
    found = [
        place for node in outside for place in early_exit_comparisons(ast.unparse(node))
    ]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        "given = delivery.header('x')\nif expected == given: ok()",
        "def f(delivery):\n    sent = delivery.body\n    return sent in expected_signatures",
        "ok = hmac_digest(k, body) != b64(body)",
        "def f(token):\n    return configured_secret == token.strip()",
        "if hmac.compare_digest(expected, given): ok()",
        "if secrets.compare_digest(a, b): ok()",
        "matched = any(mac == sent for sent in delivery.headers for mac in macs)",
    ],
)
def test_the_check_catches_direct_comparisons(source) -> None:
    assert early_exit_comparisons(source)


@pytest.mark.parametrize(
    "source",
    [
        'if scheme != "sha256": fail()',
        "keys = [key for key in keys if key is not None]",
        "if algorithm not in ALGORITHMS: fail()",
        "if signing.any_matches(expected, [given]): ok()",
        "def keys(secret):\n    key = decode(secret)\n    return key not in [secret]",
    ],
)
def test_the_check_allows_shape_tests(source) -> None:
    assert early_exit_comparisons(source) == []
