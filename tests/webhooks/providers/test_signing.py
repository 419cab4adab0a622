from __future__ import annotations

import ast
import inspect

import pytest

from webhooks.exceptions import InvalidSignature
from webhooks.providers import signing


def reason(call) -> str:
    with pytest.raises(InvalidSignature) as caught:
        call()
    return caught.value.reason


def test_hmac_digest_matches_known_sha256_vector() -> None:
    # GitHub's published vector.
    digest = signing.hmac_digest(b"It's a Secret to Everybody", b"Hello, World!")
    assert (
        digest.hex()
        == "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_hmac_digest_refuses_unknown_algorithms() -> None:
    with pytest.raises(ValueError):
        signing.hmac_digest(b"k", b"m", "md5")


def test_any_matches_finds_a_match_among_several() -> None:
    assert signing.any_matches([b"a", b"b"], [b"x", b"b"])
    assert not signing.any_matches([b"a", b"b"], [b"x", b"y"])
    assert not signing.any_matches([], [b"x"])
    assert not signing.any_matches([b"a"], [])


def test_signing_module_has_no_early_exit_comparison() -> None:
    # Every comparison of bytes in signing.py is compare_digest: no ==, !=, "in"
    # on signatures, and no loop that breaks or returns on the first match.
    function = ast.parse(inspect.getsource(signing.any_matches)).body[0]
    nodes = list(ast.walk(function))
    assert not [node for node in nodes if isinstance(node, ast.Break | ast.Compare)]
    returns = [node for node in nodes if isinstance(node, ast.Return)]
    assert returns == [function.body[-1]]  # the only return is after both loops


@pytest.mark.parametrize("value", [None, "", "   "])
def test_require_missing_value_is_missing_signature(value) -> None:
    assert reason(lambda: signing.require(value)) == "missing_signature"


@pytest.mark.parametrize("value", ["zz", "abc", "0x12"])
def test_decode_hex_bad_input_is_malformed(value) -> None:
    assert reason(lambda: signing.decode_hex(value)) == "malformed_signature"


@pytest.mark.parametrize("value", ["***", "abc"])
def test_decode_base64_bad_input_is_malformed(value) -> None:
    assert reason(lambda: signing.decode_base64(value)) == "malformed_signature"


def test_decode_by_encoding_name() -> None:
    assert signing.decode("00ff", "hex") == b"\x00\xff"
    assert signing.decode("AP8=", "base64") == b"\x00\xff"
    with pytest.raises(ValueError):
        signing.decode("00", "base32")


@pytest.mark.parametrize("value", ["", "-1", "1.5", "12e3", "١٢٣", "9999999999999"])
def test_parse_timestamp_rejects_non_unix_seconds(value) -> None:
    assert reason(lambda: signing.parse_timestamp(value)) == "malformed_signature"


def test_parse_timestamp_accepts_digits() -> None:
    assert signing.parse_timestamp(" 1614265330 ") == 1614265330


def test_check_tolerance_both_directions() -> None:
    signing.check_tolerance(1000, 300, 1000)
    signing.check_tolerance(700, 300, 1000)
    signing.check_tolerance(1300, 300, 1000)
    assert (
        reason(lambda: signing.check_tolerance(699, 300, 1000))
        == "timestamp_out_of_tolerance"
    )
    assert (
        reason(lambda: signing.check_tolerance(1301, 300, 1000))
        == "timestamp_out_of_tolerance"
    )


def test_check_tolerance_old_only_accepts_the_future() -> None:
    signing.check_tolerance(99999, 300, 1000, reject_future=False)


def test_check_tolerance_none_disables_the_check() -> None:
    signing.check_tolerance(0, None, 10**10)


def test_split_items_keeps_repeats_in_order() -> None:
    assert signing.split_items("t=1,v1=a, v1=b") == [
        ("t", "1"),
        ("v1", "a"),
        ("v1", "b"),
    ]


@pytest.mark.parametrize("header", ["garbage", "=x", "t=1,,v1=a"])
def test_split_items_garbage_is_malformed(header) -> None:
    assert reason(lambda: signing.split_items(header)) == "malformed_signature"
