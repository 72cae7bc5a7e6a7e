"""The one redaction every shown text passes through (``core/redaction.py``), piece by piece.

``tests/test_secrets.py`` plants secrets and checks whole runs; there, several layers hide the
same secret, so a layer could stop working unnoticed. Here each layer is checked on its own:
the registry of secrets, the ``Authorization`` header scrub, the scrub of ``token``/``Bearer``/
``Basic`` credentials in free text, and the URL scrub. The last test shows, through the real CLI,
a secret that only the registry hides.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from micropkg_tasks.core import redaction
from micropkg_tasks.core.redaction import (
    REDACTED,
    redact,
    redact_text,
    redact_url,
    redact_urls_in,
    register_secrets,
)
from tests.conftest import kedro_project, run_micropkg
from tests.hostile_archives import valid_sdist
from tests.servers import AuthHttpServer, auth_http  # noqa: F401 (fixture)


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no registered secret (the registry lives for the whole process)."""
    monkeypatch.setattr(redaction, "_registered", set())


# -- the registry -------------------------------------------------------------------------------


def test_a_registered_secret_is_hidden_wherever_it_appears() -> None:
    register_secrets({"hunter2-password"})
    shown = redact_text("login with hunter2-password failed; retrying hunter2-password")
    assert shown == "login with *** failed; retrying ***"


def test_secrets_stay_registered_across_calls_and_add_up() -> None:
    register_secrets({"first-secret"})
    register_secrets(frozenset({"second-secret"}))
    assert redact_text("first-secret second-secret") == "*** ***"


def test_secrets_shorter_than_the_minimum_are_not_registered() -> None:
    assert redaction.MIN_SECRET_LENGTH == 4
    register_secrets({"abc", "wxyz"})
    assert redact_text("abc wxyz") == "abc ***"


def test_the_longest_secret_is_hidden_first() -> None:
    register_secrets({"phrase", "pass-phrase-9"})  # sorted by text, "phrase" would come first
    assert redact_text("pass-phrase-9 and phrase") == "*** and ***"


def test_redact_hides_given_secrets_longest_first_and_skips_empty_ones() -> None:
    assert redact("key=abcd1234 short=abcd", {"abcd", "abcd1234", ""}) == "key=*** short=***"
    assert redact("a-word-9", {"word", "a-word-9"}) == "***"
    assert redact("nothing here", set()) == "nothing here"


def test_empty_text_is_returned_as_it_is() -> None:
    register_secrets({"secret-value"})
    assert redact_text("") == ""


# -- Authorization headers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Authorization: token abc123def456", "Authorization: token ***"),
        ("authorization: Bearer eyJhbGciOiJIUzI1NiJ9", "authorization: Bearer ***"),
        ("{'Authorization': 'Bearer sk-live-42'}", "{'Authorization': 'Bearer ***'}"),
        ('{"Authorization": "Basic dXNlcjpwYXNz"}', '{"Authorization": "Basic ***"}'),
        ("authorization=Basic dXNlcjpwYXNz next", "authorization=Basic *** next"),
        ("Proxy-Authorization: rawsecret", "Proxy-Authorization: ***"),
        ("AUTHORIZATION:short", "AUTHORIZATION:***"),
    ],
)
def test_the_credential_of_an_authorization_header_is_hidden(text: str, shown: str) -> None:
    assert redact_text(text) == shown


def test_an_authorization_header_keeps_what_follows_it() -> None:
    text = "headers={'Authorization': 'token abc', 'Accept': 'application/json'}"
    assert redact_text(text) == "headers={'Authorization': 'token ***', 'Accept': 'application/json'}"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # Letters that match ASCII ones only case-insensitively ("\u0130" is a capital I with a dot,
        # "\u212a" the Kelvin sign): the header and the scheme word are still found.
        ("\u00fc Author\u0130zation: rawsecret", "\u00fc Author\u0130zation: ***"),
        ("sent To\u212aen ghp_0123456789 \u00fc", "sent To\u212aen *** \u00fc"),
        # A header and a scheme word in text that also holds a URL and non-ASCII letters.
        ("\u00e9 https://u:p@h/x Authorization: Basic abc, then Bearer abcdefg12",
         "\u00e9 https://***@h/x Authorization: Basic ***, then Bearer ***"),
    ],
)
def test_credentials_are_hidden_in_text_that_is_not_ascii(text: str, shown: str) -> None:
    assert redact_text(text) == shown


# -- token, Bearer and Basic credentials in free text ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("sent Bearer eyJhbGciOi1234 to the server", "sent Bearer *** to the server"),
        ("BEARER abcdefg1", "BEARER ***"),
        ("using token ghp_0123456789abcdef", "using token ***"),
        ("basic dXNlcjE6cGFzcw== was refused", "basic *** was refused"),
    ],
)
def test_a_credential_after_a_scheme_word_is_hidden(text: str, shown: str) -> None:
    assert redact_text(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "basic authentication is required",  # words, not a credential
        "the token expired",
        "Bearer abcdef1",  # seven characters: too short to be a credential
        "Bearer abcdefgh",  # no digit
        "tokens abcdefgh12",  # not the scheme word itself
    ],
)
def test_ordinary_words_after_a_scheme_word_stay_readable(text: str) -> None:
    assert redact_text(text) == text


# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pass@host.example/x.tar.gz", "https://***@host.example/x.tar.gz"),
        ("https://token@host.example/x", "https://***@host.example/x"),
        ("https://a:b@c@host.example:8443/x", "https://***@host.example:8443/x"),
        ("https://host.example/x?sig=abc&ref=main", "https://host.example/x?sig=***&ref=main"),
        ("https://host.example/x?X-Amz-Expires=60&X-Amz-Signature=f00d", "https://host.example/x?X-Amz-Expires=60&X-Amz-Signature=***"),
        ("https://host.example/x?AccessToken", "https://host.example/x?***"),
        ("https://host.example/x?a=&b=1", "https://host.example/x?a=&b=***"),
        ("https://host.example/x?a=1&&b=2", "https://host.example/x?a=***&&b=***"),
        ("https://host.example/x?sig=abc==&ref=v=1", "https://host.example/x?sig=***&ref=v=1"),
        ("https://host.example/x#frag", "https://host.example/x#frag"),
        ("s3://bucket/key.tar.gz", "s3://bucket/key.tar.gz"),
        ("/local/path/with@sign.tar.gz", "/local/path/with@sign.tar.gz"),
    ],
)
def test_credentials_a_url_carries_are_hidden(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact_text(url) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://deploy:pa55word@[not-an-ip/x.tar.gz", "https://***@[not-an-ip/x.tar.gz"),
        ("https://deploy:pa55word@[not-an-ip/x?sig=abc&ref=main", "https://***@[not-an-ip/x?sig=***&ref=main"),
        ("https://[not-an-ip/x?sig=abc", "https://[not-an-ip/x?sig=***"),
        ("https://[not-an-ip/x", "https://[not-an-ip/x"),
        # the authority ends at the first of "/?#"; a later "://" or "@" is not part of it
        ("https://u:pa55@[bad/x?next=https://h/y", "https://***@[bad/x?next=***"),
        ("https://[bad/a@b/c", "https://[bad/a@b/c"),
        ("https://[bad?a@b", "https://[bad?***"),
        # the host follows the last "@" of the authority
        ("https://a@b:pa55@[bad/x", "https://***@[bad/x"),
        # no "/?#" at all: the whole rest is the authority
        ("https://u:pa55@[bad", "https://***@[bad"),
        ("https://uX:pa55@[bad/x", "https://***@[bad/x"),
    ],
)
def test_a_url_that_does_not_parse_still_loses_its_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_every_url_in_a_text_is_redacted_up_to_its_end() -> None:
    text = "tried 'https://u:p@one.example/a' and \"http://two.example/b?key=k3y\" then <ftp://x:y@three/c>"
    assert redact_urls_in(text) == (
        "tried 'https://***@one.example/a' and \"http://two.example/b?key=***\" then <ftp://***@three/c>"
    )
    assert redact_urls_in("no url here") == "no url here"


def test_a_requirement_line_with_a_url_is_redacted() -> None:
    line = "evil @ https://bot:s3cr3t@packages.example/evil-1.0.tar.gz ; python_version >= '3.10'"
    assert redact_text(line) == "evil @ https://***@packages.example/evil-1.0.tar.gz ; python_version >= '3.10'"


def test_all_scrubs_apply_to_one_text() -> None:
    register_secrets({"registered-42"})
    text = "registered-42 https://u:p@h/x Authorization: token abc Bearer zyxw98765"
    assert redact_text(text) == f"{REDACTED} https://***@h/x Authorization: token *** Bearer ***"


# -- through the CLI ------------------------------------------------------------------------------


def test_a_header_secret_that_is_also_in_the_url_is_not_shown(tmp_path: Path, auth_http: AuthHttpServer) -> None:
    """The token of the ``--fs-args`` header also appears in the URL's path, where no URL rule
    hides it. Only the registry does: the ``pulled <url>`` line shows ``***`` in its place."""
    url = auth_http.publish(f"/t/{auth_http.token}/data_cleaning-0.1.tar.gz", valid_sdist())
    args = tmp_path / "args.yml"
    args.write_text(f"headers:\n  Authorization: token {auth_http.token}\n", encoding="utf-8")
    project = kedro_project(tmp_path / "project")

    for extra in ([], ["--json"]):
        result = run_micropkg(["pull", url, "--fs-args", str(args), "--no-compile", "--force", *extra], project)

        assert result.exit_code == 0, result.stderr
        assert auth_http.token not in result.stdout + result.stderr
        assert f"{auth_http.base}/t/***/data_cleaning-0.1.tar.gz" in result.stdout
