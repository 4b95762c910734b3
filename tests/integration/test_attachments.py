"""Customers' photos end to end (real Redis, SQLite, files or a real S3-compatible server): only
JPEG, PNG and WebP pass, and what is kept has no metadata left; only the conversation's token (or an
agent who may read it) gets it back; the photo hands the conversation to the team; retention and
erasure remove the bytes too; no body is ever a 5xx."""

from __future__ import annotations

import io
import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin
from sqlalchemy import update

from bot.config import Settings
from bot.dialogue.domain import Domain
from bot.services import purge_expired
from bot.storage.analytics import Analytics, Filters
from bot.storage.blobs import BlobMissing, S3AttachmentStore, new_key
from bot.storage.models import AttachmentRecord
from bot.web.app import create_app
from tests.clients import WidgetClient

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery"
MAX_BYTES = 300_000
TEXTS = {name: r[0].text for name, r in
         Domain.load(Path(__file__).resolve().parents[2] / "training_data" / "domain.yml").responses.items()}
RED, BLUE = (255, 0, 0), (0, 0, 255)


# --- images --------------------------------------------------------------------------------------
def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def halves(width: int = 40, height: int = 20) -> Image.Image:
    """Red on the left, blue on the right: where the red half ends up shows the orientation."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image


def jpeg_with_gps() -> bytes:
    """A photo as a phone writes it: EXIF with the camera, GPS position and orientation 6 (the
    pixels are stored turned: "rotate 90 degrees clockwise to show"), and a comment."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 7.5), 3: "E", 4: (4.0, 53.0, 12.0)}  # GPS IFD
    return encoded(halves(), "JPEG", exif=exif.tobytes(), comment=b"home address", quality=95)


def png_with_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jo Bloggs")
    info.add_itxt("Location", "52.37N 4.89E", zip=True)
    return encoded(Image.new("RGBA", (30, 30), (0, 128, 0, 200)), "PNG", pnginfo=info)


def webp_with_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    return encoded(halves(3000, 100), "WEBP", exif=exif.tobytes())


def noisy_jpeg() -> bytes:
    """Tens of kilobytes: over the app's default body limit for JSON, under the photo limit."""
    return encoded(Image.frombytes("RGB", (160, 160), os.urandom(160 * 160 * 3)), "JPEG", quality=95)


def bomb() -> bytes:
    """A few kilobytes of PNG that decode to 400 million pixels."""
    return encoded(Image.new("1", (20_000, 20_000)), "PNG")


# --- the app -------------------------------------------------------------------------------------
@pytest.fixture
def app_config(app_settings: Settings) -> Settings:
    return app_settings.updated({"handoff.business_hours": "Mon-Sun 00:00-24:00", "handoff.timezone": "UTC",
                                 "attachments.max_bytes": MAX_BYTES, "rate_limit.enabled": False})


def started(app_config: Settings, demo_models: tuple) -> WidgetClient:
    client = WidgetClient(create_app(app_config, demo_models))
    client.__enter__()
    agents = client.app.state.services.agents
    agents.create("admin1", "Ada Admin", PASSWORD, "admin")
    agents.create("agent1", "Sam Lee", PASSWORD, "agent")
    return client


@pytest.fixture
def client(app_config: Settings, demo_models: tuple) -> Iterator[WidgetClient]:
    c = started(app_config, demo_models)
    try:
        yield c
    finally:
        c.__exit__(None, None, None)


def new_conversation(client: WidgetClient, cid: str) -> str:
    r = client.post("/api/v1/conversations", json={"conversation_id": cid})
    assert r.status_code == 201, r.text
    client.tokens[cid] = r.json()["conversation_token"]
    return cid


def upload(client: WidgetClient, cid: str, data: object, content_type: str = "image/jpeg",
           **headers: str):
    return client.post(f"/api/v1/conversations/{cid}/attachments", content=data,  # type: ignore[arg-type]
                       headers={"Content-Type": content_type, **headers})


def sent(client: WidgetClient, cid: str, data: bytes, content_type: str = "image/jpeg") -> dict:
    r = upload(client, cid, data, content_type)
    assert r.status_code == 201, r.text
    return r.json()


def served(client: WidgetClient, body: dict) -> Image.Image:
    r = client.get(body["attachment"]["url"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == body["attachment"]["content_type"]
    return Image.open(io.BytesIO(r.content))


def login(client: WidgetClient, username: str) -> str:
    csrf = client.get("/console/api/session").json()["csrf"]
    r = client.post("/console/api/login", json={"username": username, "password": PASSWORD},
                    headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    return r.json()["csrf"]


# --- what is kept --------------------------------------------------------------------------------
def test_a_phone_photo_loses_its_exif_and_gps_and_stands_upright(client: WidgetClient) -> None:
    cid = new_conversation(client, "photo-jpeg")
    body = sent(client, cid, jpeg_with_gps())
    a = body["attachment"]
    assert (a["content_type"], a["width"], a["height"]) == ("image/jpeg", 20, 40)  # turned as shown
    assert a["url"] == f"/api/v1/conversations/{cid}/attachments/{a['id']}"
    r = client.get(a["url"])
    assert r.headers["cache-control"] == "private, max-age=3600"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"] == "inline"
    assert b"Exif" not in r.content and b"PhoneMaker" not in r.content and b"home address" not in r.content
    image = Image.open(io.BytesIO(r.content))
    assert image.format == "JPEG" and not image.getexif() and "exif" not in image.info
    assert "comment" not in image.info and "icc_profile" not in image.info
    top, bottom = image.convert("RGB").getpixel((10, 5)), image.convert("RGB").getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60, top  # the red half is on top once turned clockwise
    assert bottom[2] > 200 and bottom[0] < 60, bottom
    history = client.get(f"/api/v1/conversations/{cid}").json()["history"]
    assert history[0]["role"] == "user" and history[0]["text"] == ""
    assert history[0]["attachment"] == {"id": a["id"], "content_type": "image/jpeg", "width": 20,
                                        "height": 40}


def test_png_text_chunks_are_gone_and_webp_stays_webp_scaled_down(client: WidgetClient) -> None:
    cid = new_conversation(client, "photo-png")
    png = sent(client, cid, png_with_text(), "image/png")
    image = served(client, png)
    raw = client.get(png["attachment"]["url"]).content
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (30, 30)
    assert not {"Author", "Location"} & set(image.info)
    assert not any(chunk in raw for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"iCCP"))
    webp = sent(client, cid, webp_with_exif(), "image/webp")
    assert (webp["attachment"]["width"], webp["attachment"]["height"]) == (2048, 68)
    image = served(client, webp)
    assert image.format == "WEBP" and image.size == (2048, 68) and not image.getexif()
    assert b"EXIF" not in client.get(webp["attachment"]["url"]).content
    # Tens of kilobytes go through (the app's JSON limit is 16 KB): this route has its own.
    big = noisy_jpeg()
    assert len(big) > 16_384
    assert sent(client, cid, big)["attachment"]["width"] == 160


def test_what_the_bytes_are_decides_not_the_declared_type(client: WidgetClient) -> None:
    cid = new_conversation(client, "photo-types")
    gif = encoded(Image.new("RGB", (8, 8), RED), "GIF")
    cases = [
        (gif, "image/gif", 415, "unsupported_media_type"),
        (gif, "image/png", 422, "unsupported_image_type"),
        (encoded(Image.new("RGB", (8, 8)), "BMP"), "image/jpeg", 422, "unsupported_image_type"),
        (os.urandom(2000), "image/jpeg", 422, "invalid_image"),
        (jpeg_with_gps()[:300], "image/jpeg", 422, "invalid_image"),  # truncated
        (b"", "image/png", 422, "invalid_image"),
        (b'{"text": "hi"}', "application/json", 415, "unsupported_media_type"),
        (png_with_text(), "text/plain", 415, "unsupported_media_type"),
        (bomb(), "image/png", 422, "image_too_large"),
    ]
    for data, content_type, status, code in cases:
        r = upload(client, cid, data, content_type)
        assert (r.status_code, r.json()["error"]) == (status, code), (content_type, r.text)
    assert len(bomb()) < MAX_BYTES
    # A PNG declared as JPEG is kept as the PNG it is.
    assert sent(client, cid, png_with_text(), "image/jpeg")["attachment"]["content_type"] == "image/png"


def test_too_large_with_and_without_a_content_length(client: WidgetClient) -> None:
    cid = new_conversation(client, "photo-big")
    body = os.urandom(MAX_BYTES + 1)
    r = upload(client, cid, body)
    assert (r.status_code, r.json()["error"]) == (413, "body_too_large")

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 16_384):
            yield body[i:i + 16_384]

    r = upload(client, cid, chunks())  # chunked: no Content-Length to believe
    assert (r.status_code, r.json()["error"]) == (413, "body_too_large"), r.text
    # A Content-Length that lies (small) is caught while the bytes stream in.
    r = upload(client, cid, body, **{"Content-Length": "100"})
    assert (r.status_code, r.json()["error"]) == (413, "body_too_large"), r.text
    assert client.get(f"/api/v1/conversations/{cid}").json()["history"] == []


def test_only_the_conversations_token_uploads_and_reads(client: WidgetClient) -> None:
    mine = new_conversation(client, "photo-mine")
    theirs = new_conversation(client, "photo-theirs")
    body = sent(client, mine, jpeg_with_gps())
    url = body["attachment"]["url"]
    foreign = {"X-Conversation-Token": client.tokens[theirs]}
    for headers in (foreign, {"X-Conversation-Token": "x" * 43}):
        r = upload(client, mine, png_with_text(), "image/png", **headers)
        assert (r.status_code, r.json()["error"]) == (404, "unknown_conversation")
        r = client.get(url, headers=headers)
        assert (r.status_code, r.json()["error"]) == (404, "unknown_conversation")
    # No token: an attachment cannot create a conversation.
    r = client.post("/api/v1/conversations/photo-new/attachments", content=jpeg_with_gps(),
                    headers={"Content-Type": "image/jpeg"})
    assert (r.status_code, r.json()["error"]) == (404, "unknown_conversation")
    # Another conversation's attachment under that conversation's own token: not there.
    r = client.get(f"/api/v1/conversations/{theirs}/attachments/{body['attachment']['id']}")
    assert (r.status_code, r.json()["error"]) == (404, "unknown_attachment")
    assert client.get(f"/api/v1/conversations/{mine}/attachments/{'0' * 32}").status_code == 404
    assert client.get(f"/api/v1/conversations/{mine}/attachments/..%2F..%2Fsecret").status_code in (404, 422)


# --- the conversation ----------------------------------------------------------------------------
def test_a_photo_hands_off_and_then_waits_for_the_team(client: WidgetClient) -> None:
    cid = new_conversation(client, "photo-handoff")
    said = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "my mug arrived broken"})
    assert said.is_success
    replies = sent(client, cid, jpeg_with_gps())["replies"]
    assert [r["text"] for r in replies] == [TEXTS["utter_attachment_received"],
                                            TEXTS["utter_handoff_offline"]]  # nobody online yet
    conversation = client.get(f"/api/v1/conversations/{cid}").json()
    assert conversation["handoff"] is True
    assert [e["role"] for e in conversation["history"][-3:]] == ["user", "bot", "bot"]
    login(client, "agent1")
    queue = client.get("/console/api/queue").json()
    assert [(w["conversation_id"], w["reason"]) for w in queue["waiting"]] == [(cid, "attachment")]
    again = sent(client, cid, png_with_text(), "image/png")["replies"]
    assert [r["text"] for r in again] == [TEXTS["utter_attachment_queued"]]
    view = client.get(f"/console/api/conversations/{cid}").json()
    assert view["handoff_reason"] == "attachment"
    assert [e["attachment"]["content_type"] for e in view["history"] if e.get("attachment")] == [
        "image/jpeg", "image/png"]
    # the transcripts' conversation row says so too: analytics count the photo's hand-off
    engine = client.app.state.services.transcripts.engine
    reasons = Analytics(engine).report(Filters.default()).handoff_reasons
    assert {"reason": "attachment", "conversations": 1} in [
        {k: r[k] for k in ("reason", "conversations")} for r in reasons]


def test_while_an_agent_has_it_the_agent_sees_the_photo_live(client: WidgetClient,
                                                             app_config: Settings) -> None:
    cid = new_conversation(client, "photo-agent")
    assert client.post(f"/api/v1/conversations/{cid}/messages",
                       json={"text": "I want to talk to a real person"}).is_success
    csrf = login(client, "agent1")
    assert client.post(f"/console/api/conversations/{cid}/claim", headers={"X-CSRF-Token": csrf}).is_success
    listener = redis.Redis.from_url(app_config.redis.dsn or "", decode_responses=True).pubsub()
    listener.subscribe(client.app.state.services.queue.console_channel)
    try:
        body = sent(client, cid, jpeg_with_gps())
        assert body["replies"] == []  # the agent answers, not the bot
        attachment = body["attachment"]
        event = next_event(listener, "attachment")
    finally:
        listener.close()
    assert event == {"type": "attachment", "conversation_id": cid,
                     "attachment": {k: attachment[k] for k in ("id", "content_type", "width", "height")}}
    view = client.get(f"/console/api/conversations/{cid}").json()
    shown = [e for e in view["history"] if e.get("attachment")]
    assert [(e["role"], e["text"], e["attachment"]["id"]) for e in shown] == [("user", "", attachment["id"])]
    r = client.get(f"/console/api/conversations/{cid}/attachments/{attachment['id']}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == client.get(attachment["url"]).content
    assert r.headers["cache-control"] == "private, max-age=3600"
    # Another agent, who may not read this conversation, gets the console's 404; so does nobody.
    client.app.state.services.agents.create("agent2", "Kim Roe", PASSWORD, "agent")
    login(client, "agent2")
    r = client.get(f"/console/api/conversations/{cid}/attachments/{attachment['id']}")
    assert r.status_code in (403, 404)
    client.cookies.clear()
    r = client.get(f"/console/api/conversations/{cid}/attachments/{attachment['id']}")
    assert r.status_code == 401


def next_event(listener: redis.client.PubSub, kind: str, timeout_s: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = listener.get_message(timeout=0.2)
        if message and message["type"] == "message":
            event = json.loads(message["data"])
            if event.get("type") == kind:
                return event
    raise AssertionError(f"no {kind} event")


# --- retention and erasure -----------------------------------------------------------------------
def test_retention_purges_old_photos_bytes_and_rows(client: WidgetClient, app_config: Settings) -> None:
    cid = new_conversation(client, "photo-old")
    old = sent(client, cid, jpeg_with_gps())["attachment"]
    new = sent(client, cid, png_with_text(), "image/png")["attachment"]
    services = client.app.state.services
    records = services.attachments.records
    with records.engine.begin() as conn:
        conn.execute(update(AttachmentRecord).where(AttachmentRecord.id == old["id"])
                     .values(created_at=datetime.now(UTC) - timedelta(days=400)))
    old_key = records.find(cid, old["id"]).storage_key
    assert (app_config.data_dir / "attachments" / old_key[:2] / old_key).is_file()
    counts = client.portal.call(lambda: purge_expired(app_config, services.transcripts, services.review,
                                                      attachments=records))
    assert counts["attachments"] == 1
    assert not (app_config.data_dir / "attachments" / old_key[:2] / old_key).exists()
    with pytest.raises(BlobMissing):
        records.blobs.get(old_key)
    assert client.get(old["url"]).status_code == 404
    assert client.get(new["url"]).status_code == 200


def test_erasing_a_conversation_erases_its_photos(client: WidgetClient, app_config: Settings) -> None:
    cid = new_conversation(client, "photo-forget")
    keep = new_conversation(client, "photo-keep")
    sent(client, cid, jpeg_with_gps())
    sent(client, cid, png_with_text(), "image/png")
    kept = sent(client, keep, jpeg_with_gps())["attachment"]
    records = client.app.state.services.attachments.records
    keys = [a.storage_key for a in records.of(cid)]
    csrf = login(client, "admin1")
    r = client.delete(f"/console/api/conversations/{cid}", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert r.json()["erased"]["attachments"] == 2
    assert records.of(cid) == []
    assert not any((app_config.data_dir / "attachments" / k[:2] / k).exists() for k in keys)
    assert client.get(kept["url"]).status_code == 200


def test_uploads_are_rate_limited_per_conversation(app_config: Settings, demo_models: tuple) -> None:
    limited = app_config.updated({"rate_limit.enabled": True, "rate_limit.per_conversation_per_minute": 2})
    client = started(limited, demo_models)
    try:
        cid = new_conversation(client, "photo-flood")
        statuses = [upload(client, cid, png_with_text(), "image/png").status_code for _ in range(3)]
        assert statuses == [201, 201, 429]
    finally:
        client.__exit__(None, None, None)


# --- no body is a 5xx ----------------------------------------------------------------------------
HEADS = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"RIFF\x00\x10\x00\x00WEBPVP8 ", b"GIF89a"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=st.sampled_from(HEADS), tail=st.binary(max_size=4000),
       content_type=st.one_of(st.sampled_from(["image/jpeg", "image/png", "image/webp", "image/gif", ""]),
                              st.from_regex(r"[ -~]{0,60}", fullmatch=True)))
def test_any_bytes_and_content_type_are_never_a_5xx(client: WidgetClient, head: bytes, tail: bytes,
                                                    content_type: str) -> None:
    if "photo-fuzz" not in client.tokens:
        new_conversation(client, "photo-fuzz")
    r = upload(client, "photo-fuzz", head + tail, content_type)
    assert r.status_code < 500, r.text
    assert r.status_code in (201, 413, 415, 422), r.text
    assert "error" in r.json() or "attachment" in r.json()


# --- S3 ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3 as a real HTTP server on a free local port."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_the_s3_store_puts_gets_and_deletes(s3_server: str) -> None:
    client = s3_client(s3_server)
    client.create_bucket(Bucket="store-test")
    store = S3AttachmentStore(client, "store-test", "photos/")
    key = new_key()
    store.put(key, b"\xff\xd8 pixels", "image/jpeg")
    head = client.head_object(Bucket="store-test", Key=f"photos/{key}")
    assert head["ContentType"] == "image/jpeg"
    assert store.get(key) == b"\xff\xd8 pixels"
    store.delete(key)
    store.delete(key)  # already gone: nothing to do
    with pytest.raises(BlobMissing):
        store.get(key)
    with pytest.raises(ValueError):
        store.put("../../elsewhere", b"x", "image/png")


def test_the_whole_round_trip_on_s3(s3_server: str, app_config: Settings, demo_models: tuple) -> None:
    bucket = f"photos-{os.getpid()}-{time.time_ns()}"
    s3_client(s3_server).create_bucket(Bucket=bucket)
    config = app_config.updated({"attachments.backend": "s3", "attachments.s3_bucket": bucket,
                                 "attachments.s3_endpoint_url": s3_server,
                                 "attachments.s3_region": "us-east-1",
                                 "attachments.s3_access_key_id": "testing",
                                 "attachments.s3_secret_access_key": "testing"})
    client = started(config, demo_models)
    try:
        cid = new_conversation(client, "photo-s3")
        body = sent(client, cid, jpeg_with_gps())
        image = served(client, body)
        assert image.size == (20, 40) and not image.getexif()
        objects = s3_client(s3_server).list_objects_v2(Bucket=bucket).get("Contents", [])
        assert [o["Key"].startswith("attachments/") for o in objects] == [True]
        assert not (config.data_dir / "attachments").exists()  # nothing went to local files
        csrf = login(client, "admin1")
        erased = client.delete(f"/console/api/conversations/{cid}", headers={"X-CSRF-Token": csrf}).json()
        assert erased["erased"]["attachments"] == 1
        assert s3_client(s3_server).list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    finally:
        client.__exit__(None, None, None)


def test_a_retried_upload_keeps_the_photo_once(client: WidgetClient) -> None:
    """The widget sends the same X-Message-Id when it retries (the first answer may have been lost)."""
    cid = new_conversation(client, "photo-retry")
    first = upload(client, cid, jpeg_with_gps(), **{"X-Message-Id": "photo-1"})
    again = upload(client, cid, jpeg_with_gps(), **{"X-Message-Id": "photo-1"})
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    records = client.app.state.services.attachments.records
    assert [a.id for a in records.of(cid)] == [first.json()["attachment"]["id"]]
    history = client.get(f"/api/v1/conversations/{cid}").json()["history"]
    assert sum(1 for e in history if e.get("attachment")) == 1
    other = upload(client, cid, png_with_text(), "image/png", **{"X-Message-Id": "photo-2"})
    assert other.status_code == 201 and len(records.of(cid)) == 2
    bad = upload(client, cid, jpeg_with_gps(), **{"X-Message-Id": "no spaces/allowed"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_message_id"
    assert len(records.of(cid)) == 2
