"""Search through the real API, warehouse and snapshot store: filters, plate matching, paging,
timelines, hits, pictures, and what each role may see and leaves in the audit log."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from api_helpers import NOW, OPERATOR, PSEUDONYM_KEY, REPO, plate_picture

from gantry.privacy import pseudonymise
from ingest.snapshots import SnapshotStore

pytestmark = pytest.mark.integration
WHY = {"reason": "case 2026/123"}


def get(api_url, path, headers, **params):
    return httpx.get(f"{api_url}{path}", headers=headers, params=params, timeout=30)


def reads_of(answer) -> list[tuple[str, str]]:
    assert answer.status_code == 200, answer.text
    return [(r["plate"], r["camera"]["id"]) for r in answer.json()["items"]]


def test_no_token_or_a_wrong_one_is_refused(api_url):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {OPERATOR}"}):
        answer = get(api_url, "/v1/reads", headers, plate="AB12CDE", **WHY)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert get(api_url, "/v1/hits/stream", {}).status_code == 401
    assert get(api_url, "/v1/reads/x/image", {}).status_code == 401


def test_an_operator_must_say_why(api_url, operator):
    answer = get(api_url, "/v1/reads", operator, plate="AB12CDE")
    assert answer.status_code == 400 and "reason" in answer.json()["detail"]


def test_exact_search_newest_first_with_camera_names(api_url, operator, city):
    answer = get(api_url, "/v1/reads", operator, plate="ab 12-cde", **WHY)
    assert reads_of(answer) == [("AB12CDE", "cam3"), ("AB12CDE", "cam2"), ("AB12CDE", "cam1")]
    first = answer.json()["items"][0]
    assert first["camera"] == {"id": "cam3", "name": "Ring Road East", "lat": 51.512, "lon": -0.104}
    assert first["match"] == "exact" and "image_url" not in first  # the cam3 read kept no picture
    assert answer.json()["items"][1]["image_url"] == f"/v1/reads/{city.reads['ab_cam2'].read_id}/image"


def test_confusable_search_finds_the_read_one_glyph_away(api_url, operator):
    answer = get(api_url, "/v1/reads", operator, plate="AB12CDE", match="confusable", **WHY)
    assert reads_of(answer) == [("AB12CDE", "cam3"), ("A812CDE", "cam2"), ("AB12CDE", "cam2"), ("AB12CDE", "cam1")]
    assert [r["match"] for r in answer.json()["items"]] == ["exact", "possible", "exact", "exact"]


def test_wildcard_search(api_url, operator):
    assert reads_of(get(api_url, "/v1/reads", operator, plate="AB?12*", match="wildcard", **WHY)) == [("AB512XY", "cam3")]
    both = reads_of(get(api_url, "/v1/reads", operator, plate="AB*", match="wildcard", **WHY))
    assert sorted(set(both)) == [("AB12CDE", "cam1"), ("AB12CDE", "cam2"), ("AB12CDE", "cam3"), ("AB512XY", "cam3")]
    assert get(api_url, "/v1/reads", operator, plate="A%B", match="wildcard", **WHY).status_code == 400
    assert get(api_url, "/v1/reads", operator, plate="*", match="wildcard", **WHY).status_code == 400


def test_camera_and_time_filters(api_url, operator):
    at_cam2 = get(api_url, "/v1/reads", operator, plate="AB12CDE", match="confusable", camera="cam2", **WHY)
    assert reads_of(at_cam2) == [("A812CDE", "cam2"), ("AB12CDE", "cam2")]
    two_cameras = httpx.get(f"{api_url}/v1/reads", headers=operator, params=[
        ("plate", "AB12CDE"), ("camera", "cam1"), ("camera", "cam3"), ("reason", "x")])  # fmt: skip
    assert reads_of(two_cameras) == [("AB12CDE", "cam3"), ("AB12CDE", "cam1")]
    window = get(api_url, "/v1/reads", operator, plate="AB12CDE", reason="x",
                 **{"from": (NOW - timedelta(minutes=150)).isoformat(), "to": (NOW - timedelta(minutes=30)).isoformat()})
    assert reads_of(window) == [("AB12CDE", "cam3"), ("AB12CDE", "cam2")]
    naive_utc = get(api_url, "/v1/reads", operator, plate="AB12CDE", reason="x",
                    **{"from": (NOW - timedelta(minutes=150)).replace(tzinfo=None).isoformat()})
    assert len(reads_of(naive_utc)) == 2
    old = get(api_url, "/v1/reads", operator, camera="cam1", reason="x", **{"to": (NOW - timedelta(days=5)).isoformat()})
    assert reads_of(old) == [("OLD1234", "cam1")]  # ten days back: within the operator's thirty


def test_pages_are_stable_and_complete(api_url, operator, city):
    seen, cursor, pages = [], None, 0
    while True:
        params = {"plate": "ZZ99ZZZ", "limit": 10, **WHY} | ({"cursor": cursor} if cursor else {})
        body = get(api_url, "/v1/reads", operator, **params).json()
        seen += [r["read_id"] for r in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 25  # the reads delivered twice come once
    assert seen == [r.read_id for r in sorted(city.paging, key=lambda r: r.ts, reverse=True)]
    assert get(api_url, "/v1/reads", operator, plate="ZZ99ZZZ", cursor="!!", **WHY).status_code == 400
    assert get(api_url, "/v1/reads", operator, plate="ZZ99ZZZ", limit=100_000, **WHY).status_code == 422


def test_timeline_of_a_plate(api_url, operator, city):
    body = get(api_url, "/v1/plates/AB12CDE/timeline", operator, **WHY).json()
    assert [s["camera"]["id"] for s in body["sightings"]] == ["cam1", "cam2", "cam3"]
    assert [(c["camera"]["name"], c["reads"]) for c in body["cameras"]] == [
        ("High Street North", 1), ("Bridge Road", 1), ("Ring Road East", 1)]  # fmt: skip
    assert body["plate"] == "AB12CDE" and body["next_cursor"] is None
    possible = get(api_url, "/v1/plates/AB12CDE/timeline", operator, match="confusable", **WHY).json()
    assert [s["plate"] for s in possible["sightings"]] == ["AB12CDE", "AB12CDE", "A812CDE", "AB12CDE"]  # oldest first


def test_hits_by_list_and_priority(api_url, operator):
    stolen = get(api_url, "/v1/hits", operator, list="stolen", **WHY).json()["items"]
    assert [(h["plate"], h["listed_plate"], h["match"]) for h in stolen] == [
        ("A812CDE", "AB12CDE", "possible"), ("AB12CDE", "AB12CDE", "exact"), ("AB12CDE", "AB12CDE", "exact")]
    assert all(h["image_url"].endswith("/image") for h in stolen)
    urgent = get(api_url, "/v1/hits", operator, max_priority=2, **WHY).json()["items"]
    assert {h["list"] for h in urgent} == {"stolen"}
    wanted = get(api_url, "/v1/hits", operator, list="wanted", **WHY).json()["items"]
    assert [(h["plate"], h["camera"]["name"]) for h in wanted] == [("AB512XY", "Ring Road East")]


def test_an_operator_gets_the_picture(api_url, operator, city):
    read_id = city.reads["ab_cam1"].read_id
    answer = get(api_url, f"/v1/reads/{read_id}/image", operator, **WHY)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    assert answer.content == city.pictures["ab_cam1"]
    assert get(api_url, f"/v1/reads/{read_id}/image", operator).status_code == 400  # no reason
    assert get(api_url, f"/v1/reads/{city.reads['ab_cam3'].read_id}/image", operator, **WHY).status_code == 404
    assert get(api_url, "/v1/reads/no-such-read/image", operator, **WHY).status_code == 404
    one = get(api_url, f"/v1/reads/{read_id}", operator, **WHY).json()
    assert one["plate"] == "AB12CDE" and one["image_url"] == f"/v1/reads/{read_id}/image"


def test_an_analyst_never_sees_a_plate_or_a_picture(api_url, analyst, city):
    plates = {r.plate for r in city.reads.values()} | {"ZZ99ZZZ"}
    answers = [get(api_url, "/v1/reads", analyst, camera="cam2"), get(api_url, "/v1/hits", analyst),
               get(api_url, "/v1/reads", analyst), get(api_url, f"/v1/reads/{city.reads['ab_cam2'].read_id}", analyst)]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert not any(p in answer.text for p in plates) and "image_url" not in answer.text
    items = answers[0].json()["items"]
    assert {r["plate_pseudonym"] for r in items} >= {pseudonymise("AB12CDE", PSEUDONYM_KEY),
                                                     pseudonymise("A812CDE", PSEUDONYM_KEY)}  # fmt: skip
    hit = answers[1].json()["items"][0]
    assert hit["listed_plate_pseudonym"] and "plate" not in hit and "listed_plate" not in hit
    refused = [get(api_url, "/v1/reads", analyst, plate="AB12CDE"), get(api_url, "/v1/plates/AB12CDE/timeline", analyst),
               get(api_url, "/v1/hits", analyst, plate="AB12CDE"),
               get(api_url, f"/v1/reads/{city.reads['ab_cam1'].read_id}/image", analyst)]
    assert [a.status_code for a in refused] == [403, 403, 403, 403]
    assert not any(p in a.text for a in refused for p in plates)


def test_each_role_has_its_look_back(api_url, analyst, operator, city):
    two_days = {"from": (NOW - timedelta(days=2)).isoformat()}
    assert get(api_url, "/v1/reads", analyst, **two_days).status_code == 403  # analysts: one day
    assert get(api_url, "/v1/reads", operator, **two_days, **WHY).status_code == 200  # operators: thirty
    assert get(api_url, "/v1/reads", operator, **{"from": (NOW - timedelta(days=31)).isoformat()}, **WHY).status_code == 403
    old = city.reads["old_cam1"].read_id
    assert get(api_url, f"/v1/reads/{old}", analyst).status_code == 403
    assert "OLD1234" not in get(api_url, "/v1/reads", analyst, camera="cam1").text  # the default window is the look-back
    assert get(api_url, f"/v1/reads/{old}/image", operator, **WHY).status_code == 200


def test_operator_searches_are_audited_without_plates_in_clear(api_url, operator, warehouse_client):
    reason = "audit test: stolen vehicle report 881"
    get(api_url, "/v1/reads", operator, plate="ab-12 cde", match="confusable", reason=reason)
    get(api_url, "/v1/reads", operator, plate="AB?12*", match="wildcard", reason=reason)
    rows = warehouse_client.query(
        "SELECT actor, action, subject, rows_removed['rows_returned'] FROM audit_log WHERE reason = {r:String} "
        "ORDER BY ts", parameters={"r": reason}).result_rows  # fmt: skip
    assert [(actor, action, returned) for actor, action, _, returned in rows] == [
        ("olivia", "search_reads", 4), ("olivia", "search_reads", 1)]  # fmt: skip
    confusable, wildcard = (json.loads(subject) for _, _, subject, _ in rows)
    assert confusable == {"match": "confusable", "plate_pseudonym": pseudonymise("AB12CDE", PSEUDONYM_KEY)}
    assert wildcard["plate_pseudonym"] == pseudonymise("AB?12*", PSEUDONYM_KEY)
    assert not any("AB12CDE" in subject or "AB?12" in subject for _, _, subject, _ in rows)

def test_a_picture_viewed_is_audited(api_url, operator, warehouse_client, city):
    read_id = city.reads["ab_cam2"].read_id
    assert get(api_url, f"/v1/reads/{read_id}/image", operator, reason="picture audit test").status_code == 200
    rows = warehouse_client.query("SELECT actor, action, subject FROM audit_log WHERE reason = 'picture audit test'").result_rows
    assert rows == [("olivia", "view_image", json.dumps({"read_id": read_id}))]


def test_openapi_documents_every_route(api_url):
    spec = httpx.get(f"{api_url}/openapi.json").json()
    assert {"/v1/reads", "/v1/plates/{plate}/timeline", "/v1/hits", "/v1/reads/{read_id}/image",
            "/v1/hits/stream", "/v1/cameras"} <= set(spec["paths"])  # fmt: skip
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert httpx.get(f"{api_url}/docs").status_code == 200


def test_gantry_search_prints_a_table_and_json(api_url, api_config, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "GANTRY_API_TOKEN": OPERATOR,
           "GANTRY_DATA_DIR": str(tmp_path), "COLUMNS": "200"}  # fmt: skip
    cli = [sys.executable, "-m", "gantry", "search", "AB12CDE", "--api", api_url, "--reason", "cli test"]
    as_json = subprocess.run([*cli, "--json", "--camera", "cam2"], env=env, capture_output=True, text=True, timeout=120)
    assert as_json.returncode == 0, as_json.stderr
    assert [r["camera"]["id"] for r in json.loads(as_json.stdout)["items"]] == ["cam2"]
    table = subprocess.run([*cli, "-m", "confusable"], env=env, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    assert "A812CDE" in table.stdout and "possible" in table.stdout and "Bridge Road" in table.stdout
    no_token = subprocess.run(cli, env=env | {"GANTRY_API_TOKEN": ""}, capture_output=True, text=True, timeout=120)
    assert no_token.returncode == 2 and "token" in no_token.stderr


def test_a_charge_keeps_its_picture_reachable_after_its_read_expired(api_url, operator, api_config, warehouse_client):
    """The read's row is gone (past the reads' retention); its charge still refers to the picture."""
    store = SnapshotStore(api_config.ingest.snapshot_url)
    jpegs = {}
    for read_id, ago in (("expired-read", timedelta(days=20)), ("beyond-look-back", timedelta(days=40))):
        jpegs[read_id] = plate_picture("CH4RGED", "cam1")
        ts = NOW - ago
        ref = store.put(ts, "cam1", read_id, "overview", jpegs[read_id])
        warehouse_client.insert("zone_charges", [(1, f"charge-{read_id}", "zone-a", "CH4RGED", ts.date(), "car",
                                                  "charged", Decimal("15.00"), "GBP", ts, "cam1", read_id, 1, 1, ref)],
                                column_names=["v", "charge_id", "zone_id", "plate", "charge_date", "vehicle_class",
                                              "status", "amount", "currency", "first_read_ts", "first_camera_id",
                                              "first_read_id", "read_count", "version", "image_ref"])  # fmt: skip
    answer = get(api_url, "/v1/reads/expired-read/image", operator, **WHY)
    assert answer.status_code == 200 and answer.content == jpegs["expired-read"]
    assert get(api_url, "/v1/reads/expired-read", operator, **WHY).status_code == 404  # the read itself is gone
    assert get(api_url, "/v1/reads/beyond-look-back/image", operator, **WHY).status_code == 403
