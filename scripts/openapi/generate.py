#!/usr/bin/env python3
"""Generates StreamHub's OpenAPI 3.1 document.

Writes docs/openapi.json (for people and tools) and Sources/Registry/OpenAPI/OpenAPIDocument.swift (what the
server serves at /api/v1/openapi.json). Run it after changing a route; a test fails while the document and
the server's routes disagree.

    python3 scripts/openapi/generate.py
"""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]

def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}

def nullable(schema):
    schema = dict(schema)
    schema["type"] = [schema["type"], "null"]
    return schema

STRING = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}

def obj(properties, required=None, additional=False):
    schema = {"type": "object", "properties": properties}
    schema["required"] = list(properties.keys()) if required is None else required
    if not additional:
        schema["additionalProperties"] = False
    return schema

def json_body(schema):
    return {"application/json": {"schema": schema}}

def ok(schema, description="OK", headers=None):
    response = {"description": description, "content": json_body(schema)}
    if headers:
        response["headers"] = headers
    return response

ERROR = {"description": "Error", "content": json_body(ref("Error"))}
NO_CONTENT = {"description": "No content"}
ETAG_HEADER = {"ETag": {"schema": STRING, "description": "Version of the resource"}}

def op(summary, responses, tag, params=None, body=None, security=True, body_required=True, extra=None):
    operation = {"summary": summary, "tags": [tag], "responses": dict(responses)}
    operation["responses"]["default"] = ERROR
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": json_body(body)}
    if not security:
        operation["security"] = []
    if extra:
        operation.update(extra)
    return operation

def path_id(name="id", description="Numeric id"):
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}, "description": description}

def query(name, schema, description):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}

PAGING = [
    query("page", {"type": "integer", "minimum": 1, "maximum": 100000}, "Page number, from 1"),
    query("per_page", {"type": "integer", "minimum": 1, "maximum": 100}, "Items per page (at most 100)"),
]

STREAM_FIELDS = {
    "id": INT, "link": STRING, "source": nullable(STRING),
    "platform": {"type": "string", "enum": ["twitch", "youtube", "tiktok", "kick", "facebook", "instagram", "x", "rumble", "hls", "other"]},
    "status": {"type": "string", "enum": ["live", "offline", "unknown"]},
    "title": nullable(STRING), "city": nullable(STRING), "state": nullable(STRING), "notes": nullable(STRING),
    "posted_by": nullable(STRING), "is_pinned": BOOL, "is_archived": BOOL,
    "kind": {"type": "string", "enum": ["video", "web", "overlay", "background"]},
    "orientation": {"type": ["string", "null"], "enum": ["vertical", "horizontal", None]},
    "streamer_id": nullable(INT),
    "started_at": nullable(TIME), "ended_at": nullable(TIME), "last_checked_at": nullable(TIME), "last_live_at": nullable(TIME),
    "created_at": TIME, "updated_at": TIME, "version": INT,
}

def optional_string(max_length):
    return {"type": ["string", "null"], "maxLength": max_length}

STREAM_INPUT = {
    "type": "object",
    "description": "Unknown keys are ignored; `url` is accepted for `link` and `postedBy` for `posted_by`; '' or null clears a field.",
    "properties": {
        "link": {"type": "string", "maxLength": 2048, "description": "http(s) URL of the stream"},
        "url": {"type": "string", "maxLength": 2048},
        "source": optional_string(200), "title": optional_string(300), "city": optional_string(100), "state": optional_string(100),
        "notes": {"oneOf": [optional_string(4000), {"type": "array", "items": {"type": "string"}, "maxItems": 100}]},
        "posted_by": optional_string(200), "postedBy": optional_string(200),
        "platform": optional_string(50), "status": optional_string(20), "kind": optional_string(20), "orientation": optional_string(20),
        "is_pinned": nullable(BOOL), "is_archived": nullable(BOOL), "streamer_id": {"type": ["integer", "null"], "minimum": 1},
        "last_checked_at": optional_string(40), "last_live_at": optional_string(40),
    },
}

USER = obj({"id": INT, "email": STRING, "role": {"type": "string", "enum": ["viewer", "editor", "admin"]}, "disabled": BOOL, "created_at": TIME, "updated_at": TIME})
META = obj({"current_page": INT, "total_pages": INT, "total_count": INT, "per_page": INT})
LOCK = obj({"stream_id": INT, "locked_by": STRING, "expires_at": TIME, "expires_at_unix": {"type": "number"}, "origin": STRING})
API_KEY = obj({"id": INT, "name": STRING, "prefix": STRING, "role": {"type": "string", "enum": ["viewer", "editor", "admin"]},
               "created_at": TIME, "last_used_at": nullable(TIME), "revoked": BOOL})
FLAG = obj({"name": STRING, "enabled": BOOL, "description": STRING, "updated_by": nullable(STRING), "updated_at": nullable(TIME)})
AUDIT = obj({"id": INT, "actor": STRING, "action": STRING, "entity": STRING, "entity_id": nullable(STRING),
             "changes": {"type": "object"}, "request_id": nullable(STRING), "at": TIME})
ACCOUNT = obj({"platform": STRING, "handle": STRING, "link": nullable(STRING)})
STREAMER = obj({"id": INT, "name": STRING, "notes": nullable(STRING), "accounts": {"type": "array", "items": ref("StreamerAccount")},
                "created_at": TIME, "updated_at": TIME, "streams": {"type": "array", "items": ref("Stream")}},
               required=["id", "name", "notes", "accounts", "created_at", "updated_at"])
WALL_STREAM = obj({"id": INT, "link": STRING, "kind": STRING, "source": nullable(STRING), "label": nullable(STRING),
                   "status": {"type": "string", "enum": ["Live", "Offline", "Unknown"]}, "city": nullable(STRING), "state": nullable(STRING),
                   "notes": nullable(STRING), "orientation": {"type": ["string", "null"], "enum": ["V", "H", None]}, "addedDate": TIME})
TOKEN = obj({"token": STRING, "expires_at": TIME, "user": ref("User")})
IGNORE_TYPES = ["url", "domain", "channel", "author", "twitch_user", "discord_user"]
IGNORE_ENTRY = obj({"id": INT, "type": STRING, "value": STRING, "note": nullable(STRING), "created_by": nullable(STRING), "created_at": TIME})
DISCOVERY_RESULT = obj({"link": STRING, "platform": STRING, "outcome": {"type": "string", "enum": ["created", "unarchived", "existing", "ignored"]},
                        "stream_id": nullable(INT), "reason": nullable(STRING)})
IMPORT_ROW = obj({"line": INT, "link": STRING, "action": {"type": "string", "enum": ["create", "update", "unchanged", "error"]},
                  "stream_id": nullable(INT), "changes": {"type": "object"}, "error": nullable(STRING)})
CREDENTIALS = {
    "oneOf": [
        obj({"email": {"type": "string", "maxLength": 254}, "password": {"type": "string", "maxLength": 200}}, additional=True),
        obj({"user": obj({"email": {"type": "string", "maxLength": 254}, "password": {"type": "string", "maxLength": 200}}, additional=True)}, additional=True),
    ]
}
NEW_USER = obj({"email": {"type": "string", "maxLength": 254}, "password": {"type": "string", "minLength": 8, "maxLength": 72},
                "role": {"type": "string", "enum": ["viewer", "editor", "admin"]}}, required=["email", "password"], additional=True)
STREAMER_INPUT = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200}, "notes": optional_string(4000),
        "accounts": {"type": "array", "maxItems": 50, "items": {"type": "object", "required": ["platform", "handle"], "properties": {
            "platform": {"type": "string", "enum": ["twitch", "youtube", "tiktok", "kick", "facebook", "instagram", "x", "rumble", "hls", "other"]},
            "handle": {"type": "string", "minLength": 1, "maxLength": 200}, "link": {"type": ["string", "null"], "maxLength": 2048}}}},
    },
}

STYLE = {"type": "object", "properties": {
    "font": {"type": "string", "maxLength": 60}, "size": {"type": "integer", "minimum": 8, "maximum": 200},
    "color": {"type": "string", "maxLength": 40}, "background": {"type": "string", "maxLength": 40},
    "max_lines": {"type": "integer", "minimum": 1, "maximum": 20}, "fade_seconds": {"type": "number", "minimum": 0, "maximum": 600}}}
SOURCE_INPUT = {"type": "object", "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 100}, "kind": {"type": "string", "enum": ["captions", "web", "stream", "recording"]},
    "url": {"type": "string", "maxLength": 2048}, "stream_id": {"type": "integer", "minimum": 1}, "recording_id": {"type": "string", "maxLength": 64},
    "x": {"type": "integer"}, "y": {"type": "integer"}, "width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1},
    "z": {"type": "integer"}, "visible": BOOL, "style": STYLE}}
BROWSER_SOURCE = obj({"id": INT, "community_id": INT, "name": STRING, "kind": STRING, "url": nullable(STRING), "stream_id": nullable(INT),
                      "recording_id": nullable(STRING), "x": INT, "y": INT, "width": INT, "height": INT, "z": INT, "visible": BOOL, "style": {"type": "object"}})

STREAM_FILTERS = [
    query("status", STRING, "live, offline or unknown (comma-separated for several)"),
    query("notStatus", STRING, "Exclude these statuses (comma-separated)"),
    query("platform", STRING, "Platform(s), comma-separated"),
    query("is_pinned", {"type": "string", "enum": ["true", "false"]}, "Only pinned / unpinned streams"),
    query("is_archived", {"type": "string", "enum": ["true", "false", "any"]}, "Archived streams are hidden unless asked for"),
    query("city", {"type": "string", "maxLength": 100}, "City, case-insensitive"),
    query("state", {"type": "string", "maxLength": 100}, "State or region, case-insensitive"),
    query("q", {"type": "string", "maxLength": 200}, "Text search over source, title, city and notes"),
    query("search", {"type": "string", "maxLength": 200}, "Like q, also matching inside the link"),
    query("link", {"type": "string", "maxLength": 2048}, "Exact link, after normalisation"),
    query("streamer_id", {"type": "integer", "minimum": 1}, "Streams of one streamer"),
    query("sort", {"type": "string", "maxLength": 200}, "Fields to sort by, '-' first for descending, e.g. -created_at"),
    query("format", {"type": "string", "enum": ["json", "streamwall"]}, "streamwall: a bare array for the wall app"),
    query("token", STRING, "A JWT or API key, for clients that cannot send headers"),
] + PAGING

RECORDING_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "description": "Recording id (32 hex digits)"}
EXPORT_ID = {"name": "export", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "description": "Export id"}
TIMESTAMP = {"name": "timestamp", "in": "path", "required": True, "schema": STRING, "description": "Unix seconds or YYYYMMDDHHMMSS (UTC)"}
MINUTES = {"name": "minutes", "in": "path", "required": True, "schema": STRING, "description": "Window length in minutes (at most 1440)"}
PROGRAM_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,39}$"}, "description": "Program name"}
LAYER_ID = path_id("id", "Layer id")
COLOUR = {"type": "string", "pattern": "^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$"}
LAYER_STYLE = obj({"color": COLOUR, "background": COLOUR, "font_size": {"type": "integer", "minimum": 8, "maximum": 200},
                   "lines": {"type": "integer", "minimum": 1, "maximum": 5},
                   "font": {"type": ["string", "null"], "pattern": "^[A-Za-z0-9 _-]{1,60}$", "description": "A font family (fontconfig name); null: DejaVu Sans"},
                   "fade_seconds": {"type": "number", "minimum": 0, "maximum": 600, "description": "Captions: a line disappears this long after it came; 0 keeps it"}})
LAYER_KINDS = ["source", "wall", "captions", "text", "image", "slate"]
LAYER = obj({"id": INT, "kind": {"type": "string", "enum": LAYER_KINDS}, "z": INT, "visible": BOOL, "x": INT, "y": INT, "width": INT, "height": INT,
             "opacity": {"type": "number", "minimum": 0, "maximum": 1}, "text": nullable(STRING), "stream_id": nullable(INT), "recording_id": nullable(STRING),
             "url": nullable(STRING), "community_id": nullable(INT), "wall": nullable(STRING), "image_id": nullable(STRING),
             "crop": {"oneOf": [{"type": "null"}, ref("Crop")]}, "rewind_seconds": nullable(INT), "style": LAYER_STYLE, "updated_at": TIME})
PERCENT_SIDE = {"type": "number", "minimum": 0, "exclusiveMaximum": 100}
CROP = obj({"left": PERCENT_SIDE, "top": PERCENT_SIDE, "right": PERCENT_SIDE, "bottom": PERCENT_SIDE})
CROP["description"] = "Percent of the picture cut from each side before it is scaled to the layer; left+right and top+bottom under 95"
MEASURE = {"oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?%$"}],
           "description": "Output pixels, or percent of the program's width (x, width) or height (y, height) as \"25%\", turned into pixels when applied"}
IMAGE = obj({"id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "name": nullable(STRING), "content_type": {"type": "string", "enum": ["image/png", "image/jpeg"]},
             "width": INT, "height": INT, "size": INT, "sha256": STRING, "created_by": nullable(STRING), "created_at": TIME, "url": STRING})
IMAGE_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "description": "Image id (32 hex digits)"}
LAYER_INPUT = {"type": "object", "description": "Every key optional on PATCH; kind is required on POST. A layer keeps only its kind's fields: text (text, slate), "
               "stream_id, recording_id or url (source; a url is read through a recording of it, started when none runs, under the recorder's guard: "
               "422 url_refused), community_id (captions), wall (wall: an existing wall of at most 16 cells, shown as a mosaic that "
               "follows it live), image_id (image: an uploaded image). A new layer without a size covers the canvas (a text or captions layer: a band "
               "as tall as its lines; an image layer: the image's own size, shrunk to fit). It must overlap the canvas; width and height at most four "
               "times the program's. crop (source, wall and image layers) cuts the picture before it is scaled.",
               "properties": {"kind": {"type": "string", "enum": LAYER_KINDS}, "visible": BOOL, "x": MEASURE, "y": MEASURE, "width": MEASURE,
                              "height": MEASURE, "z": {"type": "integer", "minimum": -1000, "maximum": 1000},
                              "opacity": {"type": "number", "minimum": 0, "maximum": 1}, "text": {"type": ["string", "null"], "maxLength": 500},
                              "stream_id": nullable(INT), "recording_id": nullable(STRING), "url": {"type": ["string", "null"], "maxLength": 2048},
                              "community_id": nullable(INT), "wall": {"type": ["string", "null"], "pattern": "^[a-z0-9][a-z0-9-]{0,39}$"},
                              "image_id": {"type": ["string", "null"], "pattern": "^[0-9a-f]{32}$"}, "crop": {"oneOf": [{"type": "null"}, ref("Crop")]},
                              "rewind_seconds": {"type": ["integer", "null"], "minimum": 0, "maximum": 604800,
                                                 "description": "A source layer plays its recording this far behind live (0 or null: live); a live change"},
                              "style": LAYER_STYLE}}
RENDER_STATE = obj({"isLive": BOOL, "isPaused": BOOL, "fps": {"type": "number"}, "targetFPS": INT, "frameCount": INT, "droppedFrames": INT,
                    "averageRenderTime": {"type": "number", "description": "ms of wall time per frame"}, "speed": {"type": "number"},
                    "startTime": nullable(TIME), "error": nullable(STRING), "restarts": INT, "liveChanges": INT,
                    "bitrate": {"type": "number", "description": "output kbit/s"},
                    "outputs": {"type": "array", "items": obj({"id": INT, "failures": {"type": "integer", "description": "failed connects or writes; each is retried a second later"},
                                                               "lastError": nullable(STRING), "lastErrorAt": nullable(TIME)})}})
OUTPUT = obj({"id": INT, "url": {"type": "string", "description": "The push URL with its stream key masked (only its last 4 characters, none for keys under 12)"},
              "created_at": TIME})
PROGRAM = obj({"name": STRING, "title": nullable(STRING), "width": INT, "height": INT, "fps": INT, "video_bitrate": INT, "preset": STRING,
               "audio_layer_id": nullable(INT), "state": {"type": "string", "enum": ["stopped", "running", "paused"]}, "version": INT, "hls_url": STRING,
               "layers": {"type": "array", "items": ref("Layer")}, "outputs": {"type": "array", "items": ref("Output")},
               "chat_channels": {"type": "array", "items": STRING}, "stream": ref("RenderState"), "created_by": nullable(STRING), "created_at": TIME,
               "updated_at": TIME})
PROGRAM_SETTINGS = {"title": optional_string(100), "width": {"type": "integer", "minimum": 160, "maximum": 3840, "multipleOf": 2},
                    "height": {"type": "integer", "minimum": 90, "maximum": 2160, "multipleOf": 2}, "fps": {"type": "integer", "minimum": 1, "maximum": 60},
                    "video_bitrate": {"type": "integer", "minimum": 100, "maximum": 50000, "description": "kbit/s"},
                    "preset": {"type": "string", "enum": ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]}}

PLAYLIST = {"description": "HLS playlist", "content": {"application/vnd.apple.mpegurl": {"schema": STRING}}}
SEGMENT_CONTENT = {"video/mp2t": {"schema": STRING}, "video/mp4": {"schema": STRING}, "audio/aac": {"schema": STRING}}
SEGMENT_RESPONSES = {"200": {"description": "The segment", "content": SEGMENT_CONTENT}, "206": {"description": "Part of it (Range)", "content": SEGMENT_CONTENT},
                     "416": {"description": "Range not satisfiable"}}
RECORDING = obj({
    "id": STRING, "source_url": STRING, "input_kind": {"type": "string", "enum": ["hls", "twitch", "youtube", "other"]}, "media_url": nullable(STRING),
    "stream_id": nullable(INT), "variant": STRING, "retention": INT,
    "state": {"type": "string", "enum": ["starting", "recording", "stalled", "stopped", "failed"]}, "error": nullable(STRING),
    "segments": INT, "bytes": INT, "missed_segments": INT, "errors": INT, "last_segment_at": nullable(TIME), "mean_fetch_ms": {"type": "number"},
    "media": obj({"codec": nullable(STRING), "width": nullable(INT), "height": nullable(INT), "fps": nullable({"type": "number"}), "bitrate": nullable(INT)}),
    "created_by": nullable(STRING), "created_at": TIME, "started_at": nullable(TIME), "stopped_at": nullable(TIME), "updated_at": TIME, "owner": nullable(STRING),
    "metrics_ref": STRING,
    "urls": obj({"live": STRING, "vod": STRING, "preview": STRING}),
})
EXPORT = obj({
    "id": STRING, "recording_id": STRING, "start": TIME, "duration": {"type": "number"}, "format": {"type": "string", "enum": ["mp4", "ts"]},
    "state": {"type": "string", "enum": ["queued", "running", "done", "failed"]}, "progress": {"type": "number"}, "error": nullable(STRING),
    "size": nullable(INT), "created_at": TIME, "finished_at": nullable(TIME), "file": STRING,
})

TRANSCRIBER = obj({
    "id": STRING, "recording_id": STRING, "source_url": nullable(STRING), "language": STRING, "community_id": nullable(INT),
    "wake_words": {"type": "array", "items": STRING}, "engine": STRING, "desired": {"type": "string", "enum": ["running", "stopped"]},
    "state": {"type": "string", "enum": ["starting", "running", "waiting", "error", "finished", "stopped"]}, "error": nullable(STRING),
    "session_id": nullable(STRING), "position": INT, "audio_seconds": {"type": "number"}, "utterances": INT, "wake_words_heard": INT,
    "engine_restarts": INT, "decode_errors": INT, "bad_lines": INT, "last_text_at": nullable(TIME), "owner": nullable(STRING),
    "created_by": nullable(STRING), "created_at": TIME, "updated_at": TIME, "stopped_at": nullable(TIME),
})
TRANSCRIPT_LINE = obj({
    "recording_id": STRING, "transcriber_id": STRING, "session_id": STRING, "starts_at": TIME, "ends_at": TIME,
    "start": {"type": "number", "description": "Unix seconds in the recording's media"}, "end": {"type": "number"}, "text": STRING,
    "confidence": nullable({"type": "number"}),
})
TRANSCRIBER_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "description": "Transcriber id"}
MOMENT = {"type": "string", "description": "Unix seconds, ISO 8601 or YYYYMMDDHHMMSS (UTC)"}

# Who receives which event on every realtime channel: the README's table, kept here in the same words.
ACCESS_TABLE = """Every event carries a visibility that the hub checks per audience (decided when the client signs in).
An event whose publisher declared none reaches admins only. Communities have no member list: editors and admins
see every community's captions, viewers none, an overlay key its own community's.

| event | anonymous | viewer (user or API key) | editor, admin | service key | overlay key of community A |
| --- | --- | --- | --- | --- | --- |
| stream_* (created, updated, deleted, status, discovered, locked, unlocked) | closed 4401 | yes | yes | no | no |
| recording_state, recording_export, state and preview channels | closed 4401 | yes | yes | no (4403 on /api/stream/ws) | no (4403) |
| caption of community A | closed 4401 | no | yes | no | yes |
| transcription of community A's captions | closed 4401 | no | yes | yes | yes |
| transcription / wake_word from POST /api/v1/events | closed 4401 | yes | yes | yes | no |
| caption / transcription of community B | closed 4401 | no | yes | only transcription | no |
| wall_changed of wall W, wall_presence | closed 4401 | yes | yes | no | no |
| program_changed, program_state, program_presence, and the programs' state, preview, layers and chat channels (/api/stream/ws?program=) | closed 4401 | yes | yes | no | no |
| chat_message, chat_moderation (what the chat connectors see) | closed 4401 | yes | yes | no | no |
| transcription / wake_word of a transcriber (with recording_id), transcriber_state | closed 4401 | yes | yes | yes (not transcriber_state) | its community's transcriber only (not transcriber_state) |
| internal.* | never | never | never | never | never |

Wall links: an invite reads like a viewer; a display link of wall W receives wall_changed and wall_presence of W
and the stream_updated / stream_status / stream_deleted and recording_state events of what W shows, nothing else.

Credentials: Authorization: Bearer <JWT or API key>, ?token=, the pages' session cookie (from a page of this
server), X-Service-Key, or ?key= (service or overlay key).
A socket closes with 4401 within a second when its token expires or is logged out, its user is disabled or
changes role, or its API key is revoked."""

WALL_CELL = obj({
    "cell": INT, "stream_id": nullable(INT), "recording_id": nullable(STRING), "url": nullable(STRING), "fallback_stream_id": nullable(INT),
    "rewind_seconds": nullable(INT), "blurred": BOOL, "rotation": {"type": "integer", "enum": [0, 90, 180, 270]},
    "updated_by": nullable(STRING), "updated_at": nullable(TIME),
})
WALL = obj({
    "name": STRING, "title": nullable(STRING), "columns": INT, "rows": INT,
    "audio": obj({"cell": nullable(INT), "volume": {"type": "number"}}), "version": INT, "created_by": nullable(STRING),
    "created_at": TIME, "updated_at": TIME, "cells": {"type": "array", "items": ref("WallCell")},
    "urls": obj({"display": STRING, "control": STRING}),
})
WALL_LINK = obj({
    "id": INT, "wall": STRING, "kind": {"type": "string", "enum": ["invite", "display"]}, "role": {"type": "string", "enum": ["operator", "viewer", "display"]},
    "label": nullable(STRING), "prefix": STRING, "expires_at": nullable(TIME), "max_uses": nullable(INT), "uses": INT, "revoked": BOOL,
    "created_by": nullable(STRING), "created_at": TIME, "last_used_at": nullable(TIME), "token": STRING, "url": STRING,
}, required=["id", "wall", "kind", "role", "label", "prefix", "expires_at", "max_uses", "uses", "revoked", "created_by", "created_at", "last_used_at"])
HTML_PAGE = {"200": {"description": "HTML", "content": {"text/html": {"schema": STRING}}}, "303": {"description": "To sign in, or the same page without ?token="},
             "401": {"description": "The link is invalid, expired, revoked or used up (HTML)"}, "403": {"description": "Not for this session (HTML)"},
             "404": {"description": "No such wall (HTML)"}}
PAGE_TOKEN = query("token", STRING, "A login JWT, invite or display link: becomes the session cookie, then leaves the address bar")
SESSION = obj({"signed_in": BOOL, "kind": STRING, "id": STRING, "role": STRING, "name": STRING, "scope": {"type": ["object", "null"]},
               "setup": {"type": ["string", "null"]}}, required=["signed_in"])
WALL_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,39}$"}, "description": "Wall name"}
CELL_NUMBER = {"name": "cell", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1, "maximum": 100}, "description": "Cell number, from 1, row by row"}
GRID_SIDE = {"type": "integer", "minimum": 1, "maximum": 10}
CELL_INPUT = {"type": "object", "description": "Exactly one of stream_id, recording_id or url.", "properties": {
    "stream_id": {"type": "integer", "minimum": 1}, "recording_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    "url": {"type": "string", "maxLength": 2048}, "fallback_stream_id": {"type": "integer", "minimum": 1},
    "rewind_seconds": {"type": "integer", "minimum": 0, "maximum": 604800}, "blurred": BOOL, "rotation": {"type": "integer", "enum": [0, 90, 180, 270]}}}

def stream_ok(description="The stream"):
    return ok(ref("Stream"), description, ETAG_HEADER)

paths = {
    "/health": {"get": op("Liveness and dependency status", {"200": ok({"type": "object"}), "503": ok({"type": "object"}, "The database is unreachable")}, "operations", security=False)},
    "/metrics": {"get": op("Prometheus metrics (from --metrics-networks, or with the metrics token)",
                           {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": STRING}}}}, "operations", security=False,
                           extra={"description": "Readable from the configured networks (loopback and private by default) or with Authorization: Bearer <metrics token>; otherwise 403 (401 for a wrong token). Recordings are labelled by metrics_ref, never by id."})},
    "/events": {"get": op("WebSocket: every event the caller may see as {\"event\": type, …}; send {\"subscribe\":[types]} to filter",
                          {"101": {"description": "Switching to WebSocket"}}, "realtime", security=False,
                          params=[query("types", STRING, "Comma-separated event types to receive"),
                                  query("token", STRING, "JWT or API key (or send Authorization: Bearer)"),
                                  query("key", STRING, "A service key or an overlay key")],
                          extra={"description": ACCESS_TABLE})},
    "/api/v1/events": {"post": op("Publish transcription / wake_word events (upstream speech-to-text)",
                                  {"202": ok(obj({"published": INT}))}, "realtime", security=False,
                                  params=[{"name": "X-Service-Key", "in": "header", "required": True, "schema": STRING}],
                                  body={"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}, "maxItems": 100}]})},
    "/api/v1/cable": {"get": op("WebSocket: live registry changes and edit locks", {"101": {"description": "Switching to WebSocket"}}, "registry",
                                params=[query("token", STRING, "JWT or API key"), query("since", {"type": "integer", "minimum": 0}, "Replay changes after this event id")])},
    "/api/v1/openapi.json": {"get": op("This document", {"200": ok({"type": "object"})}, "operations", security=False)},
    "/api/v1/login": {"post": op("Sign in (alias of /users/login)", {"200": ok(ref("Token"))}, "users", body=CREDENTIALS, security=False)},
    "/api/v1/users/login": {"post": op("Sign in: a JWT valid for 24 h", {"200": ok(ref("Token"))}, "users", body=CREDENTIALS, security=False)},
    "/api/v1/users/logout": {"post": op("Revoke the token of this request", {"204": NO_CONTENT}, "users")},
    "/api/v1/users/me": {"get": op("The signed-in user (or API key)", {"200": ok({"type": "object"})}, "users")},
    "/api/v1/users/signup": {"post": op("Create a viewer account (while the signups flag is on)", {"201": ok(ref("Token"))}, "users", body=NEW_USER, security=False)},
    "/api/v1/users": {
        "get": op("List users (admin)", {"200": ok(obj({"users": {"type": "array", "items": ref("User")}, "meta": ref("Meta")}))}, "users",
                  params=[query("page", {"type": "integer", "minimum": 1, "maximum": 100000}, "Page"), query("per_page", {"type": "integer", "minimum": 1, "maximum": 1000}, "Per page")]),
        "post": op("Create a user (admin)", {"201": ok(ref("User"))}, "users", body=NEW_USER),
    },
    "/api/v1/users/{id}": {
        "get": op("One user (admin)", {"200": ok(ref("User"))}, "users", params=[path_id()]),
        "patch": op("Change role, disable, or set a password (admin)", {"200": ok(ref("User"))}, "users", params=[path_id()],
                    body={"type": "object", "properties": {"role": {"type": "string", "enum": ["viewer", "editor", "admin"]}, "disabled": BOOL,
                                                           "password": {"type": "string", "minLength": 8, "maxLength": 72}}}),
    },
    "/api/v1/streams": {
        "get": op("List streams", {"200": ok({"oneOf": [obj({"streams": {"type": "array", "items": ref("Stream")}, "meta": ref("Meta")}),
                                                        {"type": "array", "items": ref("WallStream")}]}, headers=ETAG_HEADER),
                                   "304": {"description": "Not modified (If-None-Match)"}}, "streams", params=STREAM_FILTERS),
        "post": op("Create a stream (editor); an archived duplicate is brought back (200), an active one is 409",
                   {"201": stream_ok("Created"), "200": stream_ok("An archived stream with this link, un-archived")}, "streams", body=STREAM_INPUT),
    },
    "/api/v1/streams/{id}": {
        "get": op("One stream", {"200": stream_ok()}, "streams", params=[path_id()]),
        "patch": op("Change a stream (editor); If-Match makes it conditional (412 when stale)", {"200": stream_ok()}, "streams",
                    params=[path_id(), {"name": "If-Match", "in": "header", "required": False, "schema": STRING}], body=STREAM_INPUT),
        "put": op("Same as PATCH", {"200": stream_ok()}, "streams",
                  params=[path_id(), {"name": "If-Match", "in": "header", "required": False, "schema": STRING}], body=STREAM_INPUT),
        "delete": op("Delete a stream (admin)", {"204": NO_CONTENT}, "streams", params=[path_id()]),
    },
    "/api/v1/streams/{id}/pin": {
        "put": op("Pin (editor)", {"200": stream_ok()}, "streams", params=[path_id()]),
        "delete": op("Unpin (editor)", {"200": stream_ok()}, "streams", params=[path_id()]),
    },
    "/api/v1/streams/{id}/archive": {"post": op("Archive (editor)", {"200": stream_ok()}, "streams", params=[path_id()])},
    "/api/v1/streams/{id}/unarchive": {"post": op("Un-archive (editor)", {"200": stream_ok()}, "streams", params=[path_id()])},
    "/api/v1/streams/{id}/lock": {
        "put": op("Take or renew the edit lock for 30 s (editor)", {"200": ok(ref("Lock"))}, "streams", params=[path_id()]),
        "delete": op("Release the edit lock (editor)", {"204": NO_CONTENT}, "streams", params=[path_id()]),
    },
    "/api/v1/streamers": {
        "get": op("List streamers", {"200": ok(obj({"streamers": {"type": "array", "items": ref("Streamer")}, "meta": ref("Meta")}))}, "streamers",
                  params=[query("q", {"type": "string", "maxLength": 200}, "Name search")] + PAGING),
        "post": op("Create a streamer (editor)", {"201": ok(ref("Streamer"))}, "streamers", body=dict(STREAMER_INPUT, required=["name"])),
    },
    "/api/v1/streamers/{id}": {
        "get": op("A streamer with all their streams", {"200": ok(ref("Streamer"))}, "streamers", params=[path_id()]),
        "patch": op("Change a streamer (editor); accounts, when given, replace the list", {"200": ok(ref("Streamer"))}, "streamers", params=[path_id()], body=STREAMER_INPUT),
        "delete": op("Delete a streamer (admin); their streams stay", {"204": NO_CONTENT}, "streamers", params=[path_id()]),
    },
    "/api/v1/streamers/{id}/merge": {"post": op("Merge another streamer into this one (admin)", {"200": ok(ref("Streamer"))}, "streamers", params=[path_id()],
                                                body=obj({"from_id": {"type": "integer", "minimum": 1}}, additional=True))},
    "/api/v1/feature_flags": {"get": op("Feature flags", {"200": ok(obj({"feature_flags": {"type": "array", "items": ref("FeatureFlag")}}))}, "admin")},
    "/api/v1/feature_flags/{name}": {"put": op("Turn a flag on or off (admin)", {"200": ok(ref("FeatureFlag"))}, "admin",
                                               params=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$"}}],
                                               body=obj({"enabled": BOOL, "description": {"type": "string", "maxLength": 500}}, required=["enabled"], additional=True))},
    "/api/v1/api_keys": {
        "get": op("API keys (admin)", {"200": ok(obj({"api_keys": {"type": "array", "items": ref("APIKey")}}))}, "admin"),
        "post": op("Create an API key (admin); the key is shown once", {"201": ok(obj({"key": STRING, "api_key": ref("APIKey")}))}, "admin",
                   body=obj({"name": {"type": "string", "minLength": 1, "maxLength": 100}, "role": {"type": "string", "enum": ["viewer", "editor", "admin"]}}, required=["name"], additional=True)),
    },
    "/api/v1/api_keys/{id}": {"delete": op("Revoke an API key (admin)", {"204": NO_CONTENT}, "admin", params=[path_id()])},
    "/api/v1/audit": {"get": op("The audit log (admin)", {"200": ok(obj({"entries": {"type": "array", "items": ref("AuditEntry")}, "meta": ref("Meta")}))}, "admin",
                                params=[query("entity", {"type": "string", "maxLength": 200}, "stream, user, api_key, feature_flag, streamer"),
                                        query("entity_id", {"type": "string", "maxLength": 200}, "Id of the entity"),
                                        query("actor", {"type": "string", "maxLength": 200}, "e.g. user:ada@example.org"),
                                        query("since", STRING, "ISO 8601 time or Unix seconds"), query("until", STRING, "ISO 8601 time or Unix seconds")] + PAGING)},
    "/": {"get": op("The front door (HTML): sign in, then the walls, live streams, recordings and overlays at a glance", HTML_PAGE, "pages",
                    params=[PAGE_TOKEN], security=False)},
    "/admin": {"get": op("The admin page (HTML; viewer or better, else a redirect to sign in)", HTML_PAGE, "pages", params=[PAGE_TOKEN], security=False)},
    "/wall/{name}": {"get": op("A wall's display (HTML; viewer, invite or display link of this wall)", HTML_PAGE, "pages", params=[WALL_NAME, PAGE_TOKEN], security=False)},
    "/programs/{name}/control": {"get": op("A program's control page (HTML; a signed-in viewer watches, an editor changes): preview, layers, state",
                                           HTML_PAGE, "pages", params=[PROGRAM_NAME, PAGE_TOKEN], security=False)},
    "/wall/{name}/control": {"get": op("A wall's control page (HTML; viewer or invite of this wall; changes need an editor or operator invite)", HTML_PAGE, "pages",
                                       params=[WALL_NAME, PAGE_TOKEN], security=False)},
    "/assets/{file}": {"get": op("A file of the pages (CSS, JavaScript module, icon)", {"200": {"description": "The file", "content": {
        "text/css": {"schema": STRING}, "text/javascript": {"schema": STRING}, "image/svg+xml": {"schema": STRING}}}, "304": {"description": "Not modified"}, "404": {"description": "No such file"}},
        "pages", params=[{"name": "file", "in": "path", "required": True, "schema": STRING}], security=False)},
    "/session": {
        "get": op("Who the pages' session cookie is", {"200": ok(SESSION)}, "pages", security=False),
        "post": op("Start a page session from a login JWT, invite or display link (sets the HttpOnly cookie; needs X-StreamHub-Page)", {"200": ok(SESSION)}, "pages",
                   body=obj({"token": {"type": "string", "minLength": 1, "maxLength": 4096}}, required=["token"]), security=False),
        "delete": op("End the page session (clears the cookie; needs X-StreamHub-Page)", {"204": NO_CONTENT}, "pages", security=False),
    },
    "/overlay/{key}": {"get": op("The overlay page for OBS (HTML)", {"200": {"description": "HTML", "content": {"text/html": {"schema": STRING}}}}, "overlays",
                                params=[{"name": "key", "in": "path", "required": True, "schema": STRING}], security=False)},
    "/overlay/captions/{key}": {"get": op("The captions-only overlay page (HTML)", {"200": {"description": "HTML", "content": {"text/html": {"schema": STRING}}}}, "overlays",
                                         params=[{"name": "key", "in": "path", "required": True, "schema": STRING}], security=False)},
    "/ws/captions/{community}": {"get": op("WebSocket: a community's captions (?key= the overlay key)", {"101": {"description": "Switching to WebSocket"}}, "overlays",
                                           params=[{"name": "community", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}},
                                                   query("key", STRING, "The overlay key")], security=False)},
    "/api/v1/internal/captions": {"post": op("Ingest a caption (service key)", {"202": ok(obj({"stored": BOOL, "delivered_to": INT}))}, "overlays", security=False,
                                             params=[{"name": "X-Service-Key", "in": "header", "required": True, "schema": STRING}],
                                             body={"type": "object", "required": ["community_id"], "properties": {
                                                 "community_id": {"type": ["integer", "string"]}, "text": {"type": "string", "maxLength": 2000},
                                                 "speaker": {"type": "string", "maxLength": 200}, "language": {"type": "string", "maxLength": 35},
                                                 "is_final": BOOL, "platform": {"type": "string", "maxLength": 200}, "username": {"type": "string", "maxLength": 200},
                                                 "original_message": {"type": "string", "maxLength": 2000}, "translated_message": {"type": "string", "maxLength": 2000},
                                                 "detected_language": {"type": "string", "maxLength": 35}, "target_language": {"type": "string", "maxLength": 35},
                                                 "confidence": {"type": "number", "minimum": 0, "maximum": 1}}})},
    "/api/v1/communities": {
        "get": op("Communities (editor)", {"200": ok(obj({"communities": {"type": "array", "items": ref("Community")}}))}, "overlays"),
        "post": op("Create a community and its first overlay key, shown once (editor)",
                   {"201": ok(obj({"community": obj({"id": INT, "name": STRING}), "overlay_key": STRING, "overlay_url": STRING}))}, "overlays",
                   body=obj({"name": {"type": "string", "minLength": 1, "maxLength": 100}}, additional=True)),
    },
    "/api/v1/communities/{id}": {"get": op("A community and its key status (prefixes only)", {"200": ok(obj({"community": ref("Community"), "overlay_key": {"type": ["object", "null"]}}))},
                                           "overlays", params=[path_id()])},
    "/api/v1/communities/{id}/overlay_key/rotate": {"post": op("Rotate the overlay key; the new key is shown once (editor)",
                                                               {"200": ok(obj({"overlay_key": STRING, "overlay_url": STRING, "previous_valid_for_seconds": INT}))},
                                                               "overlays", params=[path_id()])},
    "/api/v1/communities/{id}/overlay_key/schedule": {"put": op("Rotate the key every N seconds, or stop (null)", {"200": ok({"type": "object"})}, "overlays",
                                                                params=[path_id()], body=obj({"every_seconds": {"type": ["number", "null"]}}, additional=True))},
    "/api/v1/communities/{id}/sources": {
        "get": op("The community's browser sources", {"200": ok(obj({"sources": {"type": "array", "items": ref("BrowserSource")}}))}, "overlays", params=[path_id()]),
        "post": op("Add a browser source (editor)", {"201": ok(ref("BrowserSource"))}, "overlays", params=[path_id()], body=SOURCE_INPUT),
    },
    "/api/v1/communities/{id}/sources/{source}": {
        "patch": op("Change a browser source (editor)", {"200": ok(ref("BrowserSource"))}, "overlays", params=[path_id(), path_id("source")], body=SOURCE_INPUT),
        "delete": op("Remove a browser source (editor)", {"204": NO_CONTENT}, "overlays", params=[path_id(), path_id("source")]),
    },
    "/api/v1/communities/{id}/access-log": {"get": op("Who loaded the overlay (editor)", {"200": ok(obj({"entries": {"type": "array", "items": {"type": "object"}}, "meta": ref("Meta")}))},
                                                      "overlays", params=[path_id()] + PAGING)},
    "/api/v1/ignore_lists/by_type": {"get": op("Ignore lists, by type (authors ignored everywhere are in both user lists)", {"200": ok(obj({k: {"type": "array", "items": STRING} for k in ["twitch_users", "discord_users", "urls", "domains", "channels"]}))}, "compat")},
    "/api/v1/ignore_lists": {
        "get": op("Ignore-list entries", {"200": ok(obj({"entries": {"type": "array", "items": IGNORE_ENTRY}, "meta": ref("Meta")}))}, "discovery",
                  params=[query("type", {"type": "string", "enum": IGNORE_TYPES}, "Only entries of this type"),
                          query("page", {"type": "integer", "minimum": 1, "maximum": 100000}, "Page number, from 1"),
                          query("per_page", {"type": "integer", "minimum": 1, "maximum": 1000}, "Items per page (at most 1000)")]),
        "post": op("Add an ignore-list entry (editor)", {"201": ok(obj({"added": {"type": "array", "items": STRING}}))}, "discovery",
                   body=obj({"type": {"type": "string", "enum": IGNORE_TYPES}, "value": {"type": "string", "minLength": 1, "maxLength": 2048},
                             "note": optional_string(500)}, required=["type", "value"])),
    },
    "/api/v1/ignore_lists/import": {"post": op("Bulk import (editor); ?dry_run=true only reports", {"200": ok(obj({
        "dry_run": BOOL, "added": INT, "existing": INT, "invalid": {"type": "array", "items": obj({"value": STRING, "error": STRING})}}))}, "discovery",
        params=[query("dry_run", {"type": "string", "enum": ["true", "false"]}, "Report without writing")],
        body={"type": "object", "properties": {
            "entries": {"type": "array", "maxItems": 10000, "items": obj({"type": STRING, "value": STRING, "note": optional_string(500)}, required=["type", "value"])},
            "type": {"type": "string", "enum": IGNORE_TYPES}, "values": {"type": "array", "maxItems": 10000, "items": STRING}, "note": optional_string(500)}})},
    "/api/v1/ignore_lists/{id}": {"delete": op("Remove an ignore-list entry (editor)", {"204": NO_CONTENT}, "discovery", params=[path_id()])},
    "/api/v1/discovery/messages": {"post": op("Find stream links in a chat message and create or refresh their streams (editor or API key)",
        {"200": ok(obj({"links": {"type": "array", "items": DISCOVERY_RESULT}}))}, "discovery",
        body=obj({"source": {"type": "string", "pattern": "^[a-z0-9_-]{1,32}$"}, "channel": optional_string(200), "author": optional_string(200),
                  "text": {"type": "string", "minLength": 1, "maxLength": 8000},
                  "posted_at": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}, {"type": "null"}]},
                  "message_id": {"type": ["string", "null"], "pattern": "^[!-~\\u0080-\\uffff]{1,200}$",
                                 "description": "The chat service's id of the message: a message with an id is ingested once (a repeat answers no links)"}},
                 required=["source", "text"], additional=True))},
    "/api/v1/streams.csv": {"get": op("All streams as CSV in the Streamwall sheet's columns", {"200": {"description": "CSV", "content": {"text/csv": {"schema": STRING}}}},
        "discovery", params=[query("is_archived", {"type": "string", "enum": ["true", "false", "any"]}, "Archived streams too (any) or only (true)")])},
    "/api/v1/streams/import": {"post": op("Import streams from CSV (editor); ?dry_run=true answers the diff without writing",
        {"200": ok(obj({"dry_run": BOOL, "summary": obj({"create": INT, "update": INT, "unchanged": INT, "error": INT}),
                        "rows": {"type": "array", "items": IMPORT_ROW}}))}, "discovery",
        params=[query("dry_run", {"type": "string", "enum": ["true", "false"]}, "Report the diff without writing")],
        extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": STRING}}}})},
    "/api/v1/streams/{id}/check": {"post": op("Check the stream's live status now (editor)", {"200": ok(obj({
        "stream_id": INT, "status": {"type": "string", "enum": ["live", "offline", "unknown"]}, "previous": STRING, "method": {"type": "string", "enum": ["hls", "yt-dlp", "http"]},
        "reason": nullable(STRING), "latency_ms": {"type": "number"}, "checked_at": TIME, "stream": ref("Stream")}))}, "status", params=[path_id()])},
    "/api/v1/streams/{id}/checks": {"get": op("The stream's check history, newest first", {"200": ok(obj({"checks": {"type": "array", "items": obj({
        "checked_at": TIME, "status": STRING, "method": STRING, "reason": nullable(STRING), "latency_ms": {"type": "number"}})}, "meta": ref("Meta")}))}, "status",
        params=[path_id(), query("page", {"type": "integer", "minimum": 1, "maximum": 100000}, "Page number, from 1"),
                query("per_page", {"type": "integer", "minimum": 1, "maximum": 500}, "Items per page (at most 500)")])},
    "/api/v1/recordings": {
        "get": op("Recordings, newest first", {"200": ok(obj({"recordings": {"type": "array", "items": ref("Recording")}, "meta": ref("Meta")}))}, "recorder",
                  params=[query("state", STRING, "starting, recording, stalled, stopped or failed (comma-separated for several)"),
                          query("stream_id", INT, "Recordings of this registry stream"),
                          query("page", {"type": "integer", "minimum": 1, "maximum": 100000}, "Page number, from 1"),
                          query("per_page", {"type": "integer", "minimum": 1, "maximum": 500}, "Items per page (at most 500)")]),
        "post": op("Start recording an HLS stream, a master playlist's variant, or a page yt-dlp can resolve (editor)",
                   {"201": ok(ref("Recording"))}, "recorder",
                   body={"type": "object", "properties": {
                       "url": {"type": "string", "minLength": 1, "maxLength": 2048}, "stream_id": INT,
                       "variant": {"oneOf": [{"type": "string", "description": "best, worst, or a maximum bandwidth in bits/s"}, {"type": "integer", "minimum": 1}]},
                       "retention": {"oneOf": [{"type": "number", "minimum": 60, "maximum": 315360000}, {"type": "string", "description": "e.g. 90m, 24h, 7d"}]}}}),
    },
    "/api/v1/recordings/{id}": {
        "get": op("A recording with its state and counters", {"200": ok(ref("Recording"))}, "recorder", params=[RECORDING_ID]),
        "delete": op("Stop a recording; what it recorded stays until retention removes it (editor)", {"200": ok(ref("Recording"))}, "recorder", params=[RECORDING_ID]),
    },
    "/api/v1/recordings/{id}/exports": {
        "get": op("A recording's exports, newest first", {"200": ok(obj({"exports": {"type": "array", "items": ref("Export")}}))}, "recorder", params=[RECORDING_ID]),
        "post": op("Export a window as one MP4 or TS file, remuxed without re-encoding (editor); progress as recording_export events",
                   {"202": ok(ref("Export"))}, "recorder", params=[RECORDING_ID],
                   body=obj({"start": {"oneOf": [{"type": "number"}, {"type": "string", "description": "ISO 8601, Unix seconds or YYYYMMDDHHMMSS (UTC)"}]},
                             "duration": {"type": "number", "exclusiveMinimum": 0, "maximum": 21600}, "format": {"type": "string", "enum": ["mp4", "ts"]}},
                            required=["start", "duration"])),
    },
    "/api/v1/recordings/{id}/exports/{export}": {"get": op("An export and its progress", {"200": ok(ref("Export"))}, "recorder",
                                                           params=[RECORDING_ID, EXPORT_ID])},
    "/api/v1/recordings/{id}/exports/{export}/file": {"get": op("The exported file, once done", {"200": {"description": "The file", "content": {
        "video/mp4": {"schema": STRING}, "video/mp2t": {"schema": STRING}}}, "206": {"description": "Part of the file (Range)", "content": {
        "video/mp4": {"schema": STRING}, "video/mp2t": {"schema": STRING}}}, "416": {"description": "Range not satisfiable"}}, "recorder",
        params=[RECORDING_ID, EXPORT_ID])},
    "/recordings/{id}/live.m3u8": {"get": op("Live playlist: the last 5 segments, sliding (?utc= starts the window at that moment; ?behind= slides N seconds behind live)",
                                             {"200": PLAYLIST}, "playback", params=[RECORDING_ID, query("utc", STRING, "Unix seconds or YYYYMMDDHHMMSS (UTC)"),
                                                                                    query("behind", {"type": "number", "minimum": 0, "maximum": 604800}, "Seconds behind live (the wall's rewind)")],
                                             security=False)},
    "/recordings/{id}/start/{timestamp}/{minutes}/vod.m3u8": {"get": op("VOD playlist of every segment overlapping the window", {"200": PLAYLIST},
                                                                         "playback", params=[RECORDING_ID, TIMESTAMP, MINUTES], security=False)},
    "/recordings/{id}/segments/{name}": {"get": op("A recorded segment (Range requests; cacheable forever)", SEGMENT_RESPONSES, "playback",
                                                   params=[RECORDING_ID, {"name": "name", "in": "path", "required": True, "schema": STRING}], security=False)},
    "/recordings/{id}/preview.jpg": {"get": op("The newest thumbnail", {"200": {"description": "JPEG", "content": {"image/jpeg": {"schema": STRING}}},
                                                                      "206": {"description": "Part of it", "content": {"image/jpeg": {"schema": STRING}}},
                                                                      "416": {"description": "Range not satisfiable"}}, "playback", params=[RECORDING_ID], security=False)},
    "/live/stream.m3u8": {"get": op("The default recording's live playlist (the original recorder's path)", {"200": PLAYLIST}, "playback", security=False)},
    "/live/{segment}": {"get": op("A segment of the default recording", SEGMENT_RESPONSES, "playback",
                                  params=[{"name": "segment", "in": "path", "required": True, "schema": STRING}], security=False)},
    "/start/{timestamp}/{minutes}/vod.m3u8": {"get": op("The default recording's VOD playlist", {"200": PLAYLIST}, "playback", params=[TIMESTAMP, MINUTES], security=False)},
    "/api/stream/ws": {"get": op("WebSocket: target=state (welcome, then a stateUpdate per recording change) or target=preview (binary thumbnails)",
                                 {"101": {"description": "Switching to WebSocket"}}, "recorder", security=False,
                                 params=[query("target", {"type": "string", "enum": ["state", "preview"]}, "Which channel"),
                                         query("token", STRING, "JWT or API key of a viewer, editor or admin (or send Authorization: Bearer)")],
                                 extra={"description": ACCESS_TABLE})},
    "/api/v1/walls": {
        "get": op("Walls (viewer)", {"200": ok(obj({"walls": {"type": "array", "items": ref("Wall")}}))}, "walls"),
        "post": op("Create a wall (editor)", {"201": ok(ref("Wall"))}, "walls",
                   body={"type": "object", "properties": {"name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,39}$"}, "title": optional_string(200),
                                                          "columns": GRID_SIDE, "rows": GRID_SIDE}, "required": ["name"]}),
    },
    "/api/v1/walls/{name}": {
        "get": op("A wall with every cell (viewer)", {"200": ok(ref("Wall"))}, "walls", params=[WALL_NAME]),
        "patch": op("Change a wall's title or size (editor); cells that no longer fit go", {"200": ok(ref("Wall"))}, "walls", params=[WALL_NAME],
                    body={"type": "object", "properties": {"title": optional_string(200), "columns": GRID_SIDE, "rows": GRID_SIDE}}),
        "delete": op("Delete a wall (editor)", {"204": NO_CONTENT}, "walls", params=[WALL_NAME]),
    },
    "/api/v1/walls/{name}/cells/{cell}": {
        "put": op("Set what a cell shows (editor)", {"200": ok(ref("Wall"))}, "walls", params=[WALL_NAME, CELL_NUMBER], body=CELL_INPUT),
        "delete": op("Clear a cell (editor)", {"200": ok(ref("Wall"))}, "walls", params=[WALL_NAME, CELL_NUMBER]),
    },
    "/api/v1/walls/{name}/audio": {"put": op("Put the audio on one cell, or none, and set the volume (editor)", {"200": ok(ref("Wall"))}, "walls",
                                             params=[WALL_NAME], body={"type": "object", "properties": {"cell": {"type": ["integer", "null"], "minimum": 1, "maximum": 100},
                                                                                                      "volume": {"type": "number", "minimum": 0, "maximum": 1}}})},
    "/api/v1/walls/{name}/sources": {"get": op("The streams (and fallbacks) and recordings a wall shows, with the running recordings of its streams (viewer, or a link of this wall)",
                                               {"200": ok(obj({"streams": {"type": "array", "items": ref("Stream")}, "recordings": {"type": "array", "items": ref("Recording")}}))},
                                               "walls", params=[WALL_NAME])},
    "/api/v1/walls/{name}/presence": {"post": op("Say that a page is open on the wall (every 10 s) or has left: a wall_presence event, nothing stored (viewer, or a link of this wall)",
                                                {"202": {"description": "Announced"}}, "walls", params=[WALL_NAME],
                                                body=obj({"session": {"type": "string", "pattern": "^[A-Za-z0-9-]{16,64}$"}, "page": {"type": "string", "enum": ["control", "display"]},
                                                          "state": {"type": "string", "enum": ["here", "gone"]}}, required=["session"]))},
    "/api/v1/walls/{name}/invites": {"post": op("Create an invite link (editor): operator or viewer, expiring, optionally limited in uses; the token is shown once",
                                               {"201": ok(ref("WallLink"))}, "walls", params=[WALL_NAME],
                                               body={"type": "object", "properties": {"role": {"type": "string", "enum": ["operator", "viewer"]},
                                                                                      "expires_in": {"type": "integer", "minimum": 60, "maximum": 2592000},
                                                                                      "max_uses": {"type": "integer", "minimum": 1, "maximum": 10000},
                                                                                      "label": optional_string(200)}, "required": ["role"]})},
    "/api/v1/walls/{name}/displays": {"post": op("Create a display link (editor): watches this wall only, until revoked; the token is shown once",
                                                {"201": ok(ref("WallLink"))}, "walls", params=[WALL_NAME],
                                                body={"type": "object", "properties": {"label": optional_string(200)}}, body_required=False)},
    "/api/v1/walls/{name}/links": {"get": op("A wall's invite and display links, without tokens (editor)",
                                             {"200": ok(obj({"links": {"type": "array", "items": ref("WallLink")}}))}, "walls", params=[WALL_NAME])},
    "/api/v1/walls/{name}/links/{link}": {"delete": op("Revoke a link (editor): its token stops working and its sockets close", {"204": NO_CONTENT}, "walls",
                                                       params=[WALL_NAME, path_id("link", "Link id")])},
    "/api/v1/programs": {
        "get": op("Programs with their layers and render state (viewer)", {"200": ok(obj({"programs": {"type": "array", "items": ref("Program")}}))}, "programs"),
        "post": op("Create a program (editor): 1280x720 at 30 fps, 3000 kbit/s, veryfast by default; stopped until started", {"201": ok(ref("Program"))}, "programs",
                   body={"type": "object", "properties": {"name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,39}$"}, **PROGRAM_SETTINGS}, "required": ["name"]}),
    },
    "/api/v1/programs/{name}": {
        "get": op("A program with its layers and render state (viewer)", {"200": ok(ref("Program"))}, "programs", params=[PROGRAM_NAME]),
        "patch": op("Change a program's settings (editor); a running program restarts its renderer (chat_channels alone does not)", {"200": ok(ref("Program"))}, "programs", params=[PROGRAM_NAME],
                    body={"type": "object", "properties": {**PROGRAM_SETTINGS, "audio_layer_id": {"type": ["integer", "null"], "description": "A source layer, or null for silence"},
                                                           "chat_channels": {"type": "array", "maxItems": 20, "items": {"type": "string", "pattern": "^[a-z0-9_-]{1,32}:[^\\s]{1,200}$"},
                                                                             "description": "source:channel the chat channel follows (twitch:somechannel, discord:123456789)"}}}),
        "delete": op("Delete a program (editor); its renderer stops", {"204": NO_CONTENT}, "programs", params=[PROGRAM_NAME]),
    },
    **{f"/api/v1/programs/{{name}}/{action}": {"post": op(summary, {"200": ok(ref("Program"))}, "programs", params=[PROGRAM_NAME], body=None)}
       for action, summary in [("start", "Start rendering (editor); 503 when ffmpeg is not installed"), ("stop", "Stop rendering (editor)"),
                               ("pause", "Pause (editor): the output keeps flowing and shows the slates (or 'Paused')"), ("resume", "Back to live (editor)")]},
    "/api/v1/programs/{name}/layers": {
        "get": op("A program's layers, bottom first (viewer)", {"200": ok(obj({"layers": {"type": "array", "items": ref("Layer")}}))}, "programs", params=[PROGRAM_NAME]),
        "post": op("Add a layer (editor), on top unless z is given; at most 32", {"201": ok(ref("Layer"))}, "programs", params=[PROGRAM_NAME], body=LAYER_INPUT),
    },
    "/api/v1/programs/{name}/layers/{id}": {
        "patch": op("Change a layer (editor): text changes show without restarting the renderer", {"200": ok(ref("Layer"))}, "programs", params=[PROGRAM_NAME, LAYER_ID],
                    body=LAYER_INPUT),
        "delete": op("Remove a layer (editor)", {"204": NO_CONTENT}, "programs", params=[PROGRAM_NAME, LAYER_ID]),
    },
    "/api/v1/programs/{name}/layers/order": {"put": op("Reorder the layers (editor): every layer id once, bottom first",
                                                       {"200": ok(obj({"layers": {"type": "array", "items": ref("Layer")}}))}, "programs", params=[PROGRAM_NAME],
                                                       body=obj({"order": {"type": "array", "items": INT}}, required=["order"]))},
    "/api/v1/programs/{name}/presence": {"post": op("Say a control page is open on the program (viewer): every 10 s, and state gone on leaving; "
                                                    "the chat channel shows who is here. Nothing is stored",
                                                    {"202": {"description": "Announced"}}, "programs", params=[PROGRAM_NAME],
                                                    body=obj({"session": {"type": "string", "pattern": "^[A-Za-z0-9-]{16,64}$"},
                                                              "page": {"type": "string", "enum": ["control"]}, "state": {"type": "string", "enum": ["here", "gone"]}},
                                                             required=["session"]))},
    "/api/v1/programs/{name}/outputs": {
        "get": op("A program's RTMP push targets, keys masked (editor)", {"200": ok(obj({"outputs": {"type": "array", "items": ref("Output")}}))}, "programs",
                  params=[PROGRAM_NAME]),
        "post": op("Add an RTMP push target (editor): rtmp:// or rtmps://host[:port]/app/key, a host the source guard allows; at most 8. "
                   "A running program restarts its renderer once (one HLS discontinuity)", {"201": ok(ref("Output"))}, "programs", params=[PROGRAM_NAME],
                   body=obj({"url": {"type": "string", "maxLength": 1024}}, required=["url"])),
    },
    "/api/v1/programs/{name}/outputs/{id}": {"delete": op("Remove an RTMP push target (editor)", {"204": NO_CONTENT}, "programs",
                                                          params=[PROGRAM_NAME, path_id("id", "Output id")])},
    "/api/v1/images": {
        "get": op("Uploaded images, newest first, without their bytes (viewer)", {"200": ok(obj({"images": {"type": "array", "items": ref("Image")}}))}, "programs"),
        "post": op("Upload a PNG or JPEG for image layers (editor): the raw bytes as the body (Content-Type image/png or image/jpeg), at most 4 MiB and "
                   "4096 pixels a side; checked chunk by chunk (PNG CRCs, JPEG markers, no animation, nothing after the end) and decoded once by ffmpeg. "
                   "The same bytes again answer the stored image (200). At most 500 images (409 too_many_images)",
                   {"201": ok(ref("Image")), "200": ok(ref("Image"), "The same bytes were uploaded before")}, "programs",
                   params=[query("name", {"type": "string", "maxLength": 100}, "A label for the image (its file name)")],
                   body=None, extra={"requestBody": {"required": True, "content": {"image/png": {"schema": {"type": "string", "format": "binary"}},
                                                                                     "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}}),
    },
    "/api/v1/images/{id}": {
        "get": op("One image's details (viewer)", {"200": ok(ref("Image"))}, "programs", params=[IMAGE_ID]),
        "delete": op("Delete an image (editor); 409 image_in_use while a layer shows it", {"204": NO_CONTENT}, "programs", params=[IMAGE_ID]),
    },
    "/api/v1/images/{id}/content": {"get": op("The image's bytes (viewer), with its SHA-256 as ETag", {"200": {"description": "The image", "content": {
        "image/png": {"schema": {"type": "string", "format": "binary"}}, "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
        "304": {"description": "Not modified (If-None-Match)"}}, "programs", params=[IMAGE_ID])},
    "/programs/{name}/live.m3u8": {"get": op("A running program's HLS output (viewer): 1-second segments, the last 6", {"200": PLAYLIST}, "programs", params=[PROGRAM_NAME])},
    "/programs/{name}/{file}": {"get": op("A segment of a program's output (viewer)", {"200": {"description": "MPEG-TS", "content": {"video/mp2t": {"schema": STRING}}}},
                                          "programs", params=[PROGRAM_NAME, {"name": "file", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^seg-[0-9]+\\.ts$"}}])},
    "/api/v1/transcribers": {
        "get": op("Transcribers, newest first (viewer); ?recording_id= for one recording's", {"200": ok(obj({"transcribers": {"type": "array", "items": ref("Transcriber")}}))},
                  "transcription", params=[query("recording_id", {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "Only this recording's transcribers")]),
        "post": op("Start transcribing a recording, an HLS link (recorded first, through the source guard) or a program's output (editor); exactly one of recording_id, url, program. Events: transcription (interim and final) "
                   "and wake_word on /events; captions on the community's overlays when community_id is set; final lines kept as the recording's transcript. "
                   "503 engine_unavailable names the install command; 422 unsupported_language, unknown_engine",
                   {"201": ok(ref("Transcriber"))}, "transcription",
                   body=obj({"recording_id": STRING, "url": {"type": "string", "maxLength": 2048},
                             "program": {"type": "string", "description": "A Stream Manager program: its output is recorded (program://NAME/live.m3u8) and transcribed"},
                             "language": {"type": "string", "default": "en-US"},
                             "community_id": INT, "wake_words": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 60}},
                             "engine": {"type": "string", "default": "pocketsphinx", "description": "pocketsphinx, or a command engine the operator configured"},
                             "start_at": {"type": "string", "enum": ["live", "beginning"], "default": "live"}})),
    },
    "/api/v1/transcribers/engines": {"get": op("The engines of this instance and whether each can run (viewer)", {"200": ok(obj({"engines": {"type": "array", "items": obj({
        "name": STRING, "kind": {"type": "string", "enum": ["built-in", "command"]}, "available": BOOL, "detail": nullable(STRING)})}}))}, "transcription")},
    "/api/v1/transcribers/{id}": {
        "get": op("A transcriber with its state and counters (viewer)", {"200": ok(ref("Transcriber"))}, "transcription", params=[TRANSCRIBER_ID]),
        "delete": op("Stop a transcriber (editor); its transcript stays", {"200": ok(ref("Transcriber"))}, "transcription", params=[TRANSCRIBER_ID]),
    },
    "/api/v1/transcribers/{id}/start": {"post": op("Start a stopped transcriber again, where it left off (editor)", {"200": ok(ref("Transcriber"))}, "transcription",
                                                   params=[TRANSCRIBER_ID], body=None)},
    "/api/v1/recordings/{id}/transcript": {"get": op("A recording's transcript (viewer): final lines starting in [from, to), as JSON, or WebVTT "
                                                     "(format=vtt or Accept: text/vtt) with cue times in seconds after from (else the first line)",
        {"200": {"description": "The transcript", "content": {"application/json": {"schema": obj({"recording_id": STRING, "from": nullable(TIME), "to": nullable(TIME),
                 "lines": {"type": "array", "items": ref("TranscriptLine")}})}, "text/vtt": {"schema": STRING}}}}, "transcription",
        params=[RECORDING_ID, query("from", MOMENT, "Start of the window"), query("to", MOMENT, "End of the window"),
                query("format", {"type": "string", "enum": ["json", "vtt"]}, "Answer format")])},
    "/api/v1/transcripts/search": {"get": op("Find a word or phrase in every transcript (viewer), newest first; each moment with the VOD URL that starts there",
        {"200": ok(obj({"query": STRING, "results": {"type": "array", "items": {"allOf": [ref("TranscriptLine"), obj({
            "vod_url": STRING, "vod_offset": {"type": "number", "description": "Seconds from the window's timestamp to the line"}})]}}}))}, "transcription",
        params=[query("q", {"type": "string", "maxLength": 200}, "Words to find (case and punctuation ignored)"),
                query("recording_id", {"type": "string", "pattern": "^[0-9a-f]{32}$"}, "Only this recording"),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "Most results"),
                query("minutes", {"type": "integer", "minimum": 1, "maximum": 1440, "default": 5}, "Length of the VOD windows")])},
    "/api/v1/locations/known_cities": {"get": op("Cities that streams are in", {"200": ok(obj({"locations": {"type": "array", "items": obj({"city": STRING, "state_province": nullable(STRING)})}}))}, "compat")},
}

document = {
    "openapi": "3.1.0",
    "info": {"title": "StreamHub API", "version": "0.1.0",
             "description": "Streams registry, users, live updates and operations of a StreamHub server. Errors are always {\"error\":{\"code\",\"message\"}}."},
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}, {"apiKey": []}],
    "paths": paths,
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "A login JWT or an API key"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        },
        "schemas": {
            "Error": obj({"error": obj({"code": STRING, "message": STRING})}),
            "Stream": obj(STREAM_FIELDS), "WallStream": WALL_STREAM, "Meta": META, "User": USER, "Token": TOKEN, "Lock": LOCK,
            "APIKey": API_KEY, "FeatureFlag": FLAG, "AuditEntry": AUDIT, "Streamer": STREAMER, "StreamerAccount": ACCOUNT,
            "Community": obj({"id": INT, "name": STRING, "created_at": TIME}), "BrowserSource": BROWSER_SOURCE,
            "Recording": RECORDING, "Export": EXPORT, "Wall": WALL, "WallCell": WALL_CELL, "WallLink": WALL_LINK,
            "Program": PROGRAM, "Layer": LAYER, "RenderState": RENDER_STATE, "Output": OUTPUT,
            "Crop": CROP, "Image": IMAGE, "Transcriber": TRANSCRIBER, "TranscriptLine": TRANSCRIPT_LINE,
        },
    },
}

text = json.dumps(document, indent=2, sort_keys=False) + "\n"
(ROOT / "docs" / "openapi.json").write_text(text)
swift = ROOT / "Sources" / "Registry" / "OpenAPI" / "OpenAPIDocument.swift"
swift.parent.mkdir(parents=True, exist_ok=True)
compact = json.dumps(document, separators=(",", ":"))
assert '"##' not in compact
swift.write_text(
    "// Generated by scripts/openapi/generate.py; do not edit by hand.\n\n"
    "/// The OpenAPI 3.1 document of the whole HTTP API, served at /api/v1/openapi.json.\n"
    f"public let openAPIDocument = ##\"{compact}\"##\n"
)
print(f"wrote docs/openapi.json and {swift.relative_to(ROOT)} ({len(paths)} paths)")
