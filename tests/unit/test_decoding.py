"""Undecodable request bodies: the guarded deserializer, the type name, and the once-a-minute log."""

from __future__ import annotations

import logging

from casemesh.services.runtime.decoding import DecodeLog, Undecodable, guarded, message_type_name
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb

BAD = b"\x0a\x02\xff\xfe"  # field 1 (code, a string) with bytes that are not UTF-8


def test_guarded_deserializer_returns_a_marker_instead_of_raising():
    decode = guarded(pb.ResolveRequest.FromString)
    assert decode(pb.ResolveRequest(code="abc").SerializeToString()).code == "abc"
    bad = decode(BAD)
    assert isinstance(bad, Undecodable) and bad.size_bytes == 4
    assert guarded(None) is None  # no deserializer: raw bytes stay raw


def test_message_type_name_is_the_protobuf_full_name():
    assert message_type_name(pb.ResolveRequest.FromString, "x") == "casemesh.urlshortener.v1.ResolveRequest"
    assert message_type_name(None, "the request of /a.B/C") == "the request of /a.B/C"
    assert message_type_name(lambda data: data, "fallback") == "fallback"


def test_decode_log_warns_once_per_method_per_interval_without_traceback(caplog):
    now = [0.0]
    log = DecodeLog(interval_s=60, clock=lambda: now[0])
    bad = Undecodable(ValueError("bad utf-8"), 4)
    with caplog.at_level(logging.WARNING, logger="casemesh.server"):
        assert log.record("/a.B/C", "a.CRequest", bad)
        assert not log.record("/a.B/C", "a.CRequest", bad)
        assert log.record("/a.B/D", "a.DRequest", bad)  # another method has its own minute
        now[0] = 61
        assert log.record("/a.B/C", "a.CRequest", bad)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 and all(r.exc_info is None for r in caplog.records)
    assert "1 more not logged" in messages[2]
