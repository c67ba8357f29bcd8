"""The API's query building: plate matching, cursors, and no client value ever inside the SQL."""

from __future__ import annotations

import pytest

from api.auth import TokenBook, load_grants
from api.queries import (
    BadQuery,
    Filter,
    confusable_plates,
    decode_cursor,
    encode_cursor,
    hits_query,
    reads_query,
    wildcard_to_like,
)
from gantry.config import ApiConfig
from gantry.errors import ConfigError
from stream_jobs.hotlist.rules import confusable_variants


def test_wildcards_become_like_patterns():
    assert wildcard_to_like("AB?12*") == "AB_12%"
    assert wildcard_to_like("ab-?1 2*") == "AB_12%"
    for bad in ("A%B", "A_B", "*", "??", "AB'; DROP", ""):
        with pytest.raises(BadQuery):
            wildcard_to_like(bad)


def test_confusable_plates_follow_the_hotlist_rule():
    assert confusable_plates("AB12CDE") == ["AB12CDE", *confusable_variants("AB12CDE")]
    assert "A812CDE" in confusable_plates("AB12CDE") and "ABI2CDE" in confusable_plates("AB12CDE")
    assert confusable_plates("XYZ") == ["XYZ", "XY2"]


def test_cursors_round_trip_and_refuse_garbage():
    assert decode_cursor(encode_cursor(1_700_000_000_123, "read:1")) == (1_700_000_000_123, "read:1")
    with pytest.raises(BadQuery):
        decode_cursor("not a cursor!")


def test_values_are_bound_never_formatted():
    hostile = "'; DROP TABLE plate_reads; --"
    f = Filter(since_ms=1, until_ms=2, plate="AB12CDE", match="confusable", cameras=(hostile,), lists=(hostile,),
               max_priority=2, min_confidence=0.5, cursor=encode_cursor(5, hostile), limit=10)
    for query in (reads_query(f), hits_query(f)):
        assert hostile not in query.sql and "AB12CDE" not in query.sql and "DROP" not in query.sql
        assert hostile in str(query.parameters)
    with pytest.raises(BadQuery):
        reads_query(Filter(since_ms=1, plate="京A12345"))


def test_tokens_from_file_and_env_with_roles(tmp_path):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("olivia: {role: operator, token: s3cret}\narthur: {role: analyst, token: other}\n")
    settings = ApiConfig(tokens_file=tokens, roles={"analyst": {"max_lookback_days": 7}})
    grants = load_grants(settings, {"GANTRY_API_TOKENS": "nina:analyst=n1, olivia:analyst=o2"})
    assert {n: g.role for n, g in grants.items()} == {"olivia": "analyst", "arthur": "analyst", "nina": "analyst"}
    book = TokenBook(grants, settings)
    who = book.principal("Bearer n1")
    assert who and who.name == "nina" and who.max_lookback_days == 7 and not who.sees_plates
    assert book.principal("Bearer s3cret") is None  # olivia's token was replaced from the environment
    assert book.principal(None) is None and book.principal("Basic n1") is None and book.principal("Bearer ") is None
    with pytest.raises(ConfigError, match="unknown role"):
        load_grants(settings, {"GANTRY_API_TOKENS": "eve:admin=x"})
    with pytest.raises(ConfigError, match="name:role=token"):
        load_grants(ApiConfig(), {"GANTRY_API_TOKENS": "eve=x"})


def test_api_config_is_validated():
    with pytest.raises(ValueError, match="default_page_size"):
        ApiConfig(default_page_size=500, max_page_size=100)
    with pytest.raises(ValueError):
        ApiConfig(roles={"operator": {"max_lookback_days": 0}})
    assert ApiConfig().host == "127.0.0.1" and ApiConfig().roles.analyst.max_lookback_days == 90
