"""Request rules of the urlshortener and analytics protos."""

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from casemesh.analytics.v1 import analytics_pb2
from casemesh.services.analytics.validation import (
    to_tuples,
    validate_batch,
    validate_stats_code,
)
from casemesh.services.runtime.errors import InvalidArgument
from casemesh.services.urlshortener.validation import (
    validate_code,
    validate_country,
    validate_shorten,
)


def field_of(fn, *args):
    with pytest.raises(InvalidArgument) as exc:
        fn(*args)
    return exc.value.field, exc.value.reason


# --- URL shortener -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com",
        "http://example.com/a/b?q=1#frag",
        "HTTPS://Example.COM/x",
        "http://127.0.0.1:8080/",
        "http://[::1]/",
        "https://bücher.example/straße",
        "https://example.com/" + "a" * (2048 - len("https://example.com/")),
    ],
)
def test_valid_urls(url):
    validate_shorten(url, "", 0)


@pytest.mark.parametrize(
    "url, reason_part",
    [
        ("", "is required"),
        ("example.com", "absolute http or https URL with a host"),
        ("/relative/path", "absolute http or https URL with a host"),
        ("ftp://example.com/file", "absolute http or https URL with a host"),
        ("javascript:alert(1)", "absolute http or https URL with a host"),
        ("http://", "absolute http or https URL with a host"),
        ("http:///path", "absolute http or https URL with a host"),
        ("https://user@:80/", "absolute http or https URL with a host"),
        ("http://[::1/", "absolute http or https URL with a host"),
        ("http://example.com:99999/", "absolute http or https URL with a host"),
        ("https://example.com/a b", "must not contain whitespace"),
        (" https://example.com", "must not contain whitespace"),
        ("https://example.com/\n", "must not contain whitespace"),
        ("https://example.com/\u00a0", "must not contain whitespace"),
        ("https://example.com/" + "a" * 2981, "must be at most 2048 bytes (got 3001)"),
    ],
)
def test_invalid_urls(url, reason_part):
    field, reason = field_of(validate_shorten, url, "", 0)
    assert field == "long_url"
    assert reason_part in reason


def test_url_length_counts_utf8_bytes():
    url = "https://example.com/" + "é" * 1015  # 20 + 2030 bytes, 1035 characters
    field, reason = field_of(validate_shorten, url, "", 0)
    assert (field, reason) == ("long_url", "must be at most 2048 bytes (got 2050)")


@pytest.mark.parametrize("alias", ["", "abcd", "my-link_2", "A" * 32])
def test_valid_aliases(alias):
    validate_shorten("https://example.com", alias, 0)


@pytest.mark.parametrize("alias", ["abc", "A" * 33, "has space", "dot.dot", "slash/", "ünï", "abcd\n"])
def test_invalid_aliases(alias):
    field, reason = field_of(validate_shorten, "https://example.com", alias, 0)
    assert field == "custom_alias"
    assert reason.startswith("must be 4 to 32 characters of [A-Za-z0-9_-]")


@pytest.mark.parametrize("ttl", [0, 1, 86_400, 157_680_000])
def test_valid_ttls(ttl):
    validate_shorten("https://example.com", "", ttl)


@pytest.mark.parametrize("ttl", [-1, 157_680_001, 2**62])
def test_invalid_ttls(ttl):
    field, reason = field_of(validate_shorten, "https://example.com", "", ttl)
    assert field == "ttl_seconds"
    assert f"(got {ttl})" in reason


def test_first_broken_field_is_named():
    assert field_of(validate_shorten, "nope", "x", -1)[0] == "long_url"
    assert field_of(validate_shorten, "https://a.b", "x", -1)[0] == "custom_alias"


def test_codes():
    for ok in ["a", "abc1234", "x_y-z", "Z" * 32]:
        validate_code(ok)
    assert field_of(validate_code, "") == ("code", "is required")
    for bad in ["Z" * 33, "a b", "a.b", "ä"]:
        field, reason = field_of(validate_code, bad)
        assert field == "code" and reason.startswith("must be 1 to 32 characters")
    assert field_of(validate_code, "", "alias")[0] == "alias"


def test_country():
    for ok in ["", "DE", "US", "ZZ"]:
        validate_country(ok)
    for bad in ["de", "D", "DEU", "D1", "ÄB"]:
        field, reason = field_of(validate_country, bad)
        assert field == "country_code" and "two upper-case letters" in reason


# --- analytics ---------------------------------------------------------------


def event(code="abc1234", seconds=1_767_225_600, nanos=0, country="DE", with_time=True):
    e = analytics_pb2.ClickEvent(code=code, country_code=country)
    if with_time:
        e.click_time.CopyFrom(Timestamp(seconds=seconds, nanos=nanos))
    return e


def test_valid_batch():
    validate_batch([event(), event(country=""), event(code="x")])
    validate_batch([event(code=f"c{i % 5}") for i in range(5000)])  # 5,000 events, 1,000 per code


def test_batch_size_limits():
    assert field_of(validate_batch, []) == ("events", "must hold at least 1 event")
    field, reason = field_of(validate_batch, [event()] * 5001)
    assert (field, reason) == ("events", "must hold at most 5000 events (got 5001)")


def test_event_fields_are_named_with_their_index():
    ok = event()
    assert field_of(validate_batch, [ok, ok, ok, event(code="")]) == ("events[3].code", "is required")
    assert field_of(validate_batch, [ok, event(code="a" * 33)])[0] == "events[1].code"
    assert field_of(validate_batch, [ok, event(code="a/b")])[0] == "events[1].code"
    assert field_of(validate_batch, [event(with_time=False)]) == ("events[0].click_time", "is required")
    assert field_of(validate_batch, [event(nanos=-1)])[0] == "events[0].click_time"
    assert field_of(validate_batch, [ok, event(country="de")])[0] == "events[1].country_code"


def test_batch_from_a_real_request_message():
    req = analytics_pb2.RecordClicksRequest(events=[event(), event(code="")])
    assert field_of(validate_batch, req.events)[0] == "events[1].code"


def test_stats_code():
    validate_stats_code("any.chars here")
    assert field_of(validate_stats_code, "") == ("code", "is required")
    assert field_of(validate_stats_code, "x" * 33)[0] == "code"


def test_to_tuples():
    assert to_tuples([event(seconds=10, nanos=500_000_000, country="")]) == [("abc1234", 10.5, "")]
