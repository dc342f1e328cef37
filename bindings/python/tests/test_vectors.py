"""The shared URL vectors (tests/vectors/), run through transporturl.parse_url:
the same cases the Rust, C and Go suites run, with the same results."""

from __future__ import annotations

import json

import pytest
from conftest import VECTORS

import transporturl


def load(name: str) -> list:
    cases = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    assert isinstance(cases, list) and cases
    return cases


def case_id(case: dict) -> str:
    what = case.get("url", case.get("url_hex", case.get("host")))
    if "port" in case and "host" in case:
        what = f"{what} + {case['port']}"
    return repr(what)[:60]


def check(case: dict, call) -> None:
    if "ok" in case:
        want = case["ok"]
        parts = call()
        assert parts.transport == want["transport"]
        assert parts.host == want["host"]
        assert parts.port == want["port"]
        assert parts.explicit_scheme is bool(want["explicit_scheme"])
        assert parts.path == want.get("path")
    else:
        code = transporturl.CODES[case["error"]]
        with pytest.raises(transporturl.Error) as info:
            call()
        e = info.value
        assert (e.code_name, e.code) == (case["error"], code), e.message
        assert case.get("message_contains", "") in e.message
        assert case.get("message_contains", "") in str(e)
        if case["error"] in ("TU_E_URL", "TU_E_INVALID_ARGUMENT", "TU_E_UNSUPPORTED_TRANSPORT",
                             "TU_E_INSECURE_PROTOCOL"):
            assert isinstance(e, ValueError)


URL_CASES = load("urls.json")


@pytest.mark.parametrize("case", URL_CASES, ids=[case_id(c) for c in URL_CASES])
def test_url_vector(case: dict) -> None:
    url = case["url"] if "url" in case else bytes.fromhex(case["url_hex"])
    if "\0" in (url if isinstance(url, str) else url.decode("latin-1")):
        # A C string cannot carry NUL: refused by the binding before C.
        with pytest.raises(transporturl.InvalidArgumentError):
            transporturl.parse_url(url)
        return
    check(case, lambda: transporturl.parse_url(url))


FSOCK_CASES = load("fsockopen.json")


@pytest.mark.parametrize("case", FSOCK_CASES, ids=[case_id(c) for c in FSOCK_CASES])
def test_fsockopen_vector(case: dict) -> None:
    if transporturl.supports("tu_parse_host"):
        check(case, lambda: transporturl.parse_url(case["host"], case["port"]))
    elif "error" in case:
        # Without a parse-only C function, the error cases go through
        # tu_connect_host: they fail while parsing, before any connection.
        check(case, lambda: transporturl.connect_host(case["host"], case["port"], timeout=1))
    else:
        pytest.skip("the library has no fsockopen-style parse-only function (tu_parse_host) yet")


def test_vector_files_are_not_empty() -> None:
    assert len(URL_CASES) >= 100
    assert len(FSOCK_CASES) >= 10
