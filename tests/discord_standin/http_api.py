"""Shared plumbing for the REST routes: request bodies, auth, error rendering, request log."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from .errors import ENTITY_TOO_LARGE, DiscordHTTPError, FormErrors, invalid_form_body
from .gateway import Gateway
from .interactions import InteractionRecord
from .models import JSON, RecordedRequest, StoredAttachment, Violation
from .world import World

log = logging.getLogger(__name__)

FILE_FIELD = re.compile(r"^files\[(\d+)\]$")
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # the default upload limit for bots

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Upload:
    """A ``files[n]`` part of a multipart body."""

    index: int
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class CallInfo:
    """Per-request notes the handlers leave for the middleware (kept in a context variable
    rather than in the request, whose string keys aiohttp now warns about)."""

    body: Any = None
    interaction: InteractionRecord | None = None


_current_call: ContextVar[CallInfo | None] = ContextVar("standin_current_call", default=None)


def current_call() -> CallInfo:
    call = _current_call.get()
    if call is None:  # outside the middleware (direct handler calls): a throwaway record
        call = CallInfo()
        _current_call.set(call)
    return call


@dataclass
class ApiSettings:
    """Knobs tests may turn (through ``DiscordStandIn``)."""

    response_deadline: float = 3.0
    token_lifetime: float = 15 * 60.0
    expected_token: str | None = None


@dataclass
class ApiContext:
    """What every route handler works with."""

    world: World
    gateway: Gateway
    settings: ApiSettings
    interactions: dict[int, InteractionRecord] = field(default_factory=dict)
    interactions_by_token: dict[str, InteractionRecord] = field(default_factory=dict)

    def require_bot_auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        token = header[4:] if header.startswith("Bot ") else ""
        expected = self.settings.expected_token
        if not token or (expected is not None and token != expected):
            raise DiscordHTTPError(401, 0, "401: Unauthorized", rule="auth.invalid_token")

    def store_uploads(
        self, channel_id: int, uploads: list[Upload], *, ephemeral: bool = False
    ) -> list[StoredAttachment]:
        return [
            self.world.store_file(
                channel_id, u.filename, u.data, content_type=u.content_type, ephemeral=ephemeral
            )
            for u in uploads
        ]


async def read_body(request: web.Request) -> tuple[JSON, list[Upload]]:
    """JSON bodies, or multipart bodies with ``payload_json`` and ``files[n]`` parts."""
    if request.content_type.startswith("multipart/"):
        payload: JSON = {}
        uploads: list[Upload] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue  # nested multipart: Discord does not use it
            name = part.name or ""
            if name == "payload_json":
                payload = json.loads(await part.text())
            elif match := FILE_FIELD.match(name):
                data = bytes(await part.read())
                uploads.append(
                    Upload(
                        int(match.group(1)),
                        part.filename or name,
                        data,
                        part.headers.get("Content-Type"),
                    )
                )
        current_call().body = {"payload_json": payload, "files": [u.filename for u in uploads]}
        total = sum(len(u.data) for u in uploads)
        if total > MAX_UPLOAD_BYTES:
            raise DiscordHTTPError(
                413, ENTITY_TOO_LARGE, "Request entity too large", rule="message.upload_too_large"
            )
        return payload, sorted(uploads, key=lambda u: u.index)
    if not request.can_read_body:
        current_call().body = None
        return {}, []
    text = await request.text()
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        raise DiscordHTTPError(
            400, 50109, "The request body contains invalid JSON.", rule="request.invalid_json"
        ) from None
    current_call().body = body
    if not isinstance(body, dict):
        errors = FormErrors()
        errors.add((), "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        raise invalid_form_body(errors, "request.not_an_object")
    return body, []


async def read_json_any(request: web.Request) -> Any:
    """A JSON body of any shape (command overwrites are lists)."""
    text = await request.text()
    try:
        body = json.loads(text) if text else None
    except ValueError:
        raise DiscordHTTPError(
            400, 50109, "The request body contains invalid JSON.", rule="request.invalid_json"
        ) from None
    current_call().body = body
    return body


def json_response(data: Any, status: int = 200) -> web.Response:
    # Exactly "application/json" (no charset), as Discord sends it: discord.py compares verbatim.
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def no_content() -> web.Response:
    return web.Response(status=204)


def truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def make_middleware(ctx: ApiContext) -> Middleware:
    """Turn ``DiscordHTTPError`` into Discord's JSON error and log every request."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        call = CallInfo()
        _current_call.set(call)
        try:
            response = await handler(request)
        except DiscordHTTPError as exc:
            response = _error_response(ctx, request, call, exc)
        except web.HTTPException:
            raise
        except Exception as exc:  # a stand-in bug: fail the test fast instead of a 500,
            # which discord.py would retry with growing sleeps.
            log.exception("stand-in failed on %s %s", request.method, request.path)
            internal = DiscordHTTPError(
                400, 0, f"stand-in internal error: {exc!r}", rule="standin.internal_error"
            )
            response = _error_response(ctx, request, call, internal)
        if not request.path.endswith("/gateway-ws"):
            ctx.world.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    body=call.body,
                    status=response.status,
                )
            )
        return response

    return middleware


def _error_response(
    ctx: ApiContext, request: web.Request, call: CallInfo, exc: DiscordHTTPError
) -> web.Response:
    """Render Discord's error body; log it, and as a violation when a rule was broken."""
    body = exc.body()
    entry = Violation(
        rule=exc.rule or "none",
        detail=exc.detail(),
        method=request.method,
        path=request.path,
        status=exc.status,
        code=exc.code,
        body=body,
    )
    ctx.world.error_responses.append(entry)
    if exc.rule is not None:
        ctx.world.violations.append(entry)
    if call.interaction is not None:
        call.interaction.errors.append(entry)
    ctx.world.changes.notify()
    return json_response(body, status=exc.status)


def make_unhandled_handler(ctx: ApiContext) -> Handler:
    """Catch-all: answer 404 like Discord's router and note the endpoint the stand-in lacks."""

    async def unhandled(request: web.Request) -> web.Response:
        body = await request.text() if request.can_read_body else None
        ctx.world.unhandled_requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                body=body,
                status=404,
            )
        )
        raise DiscordHTTPError(404, 0, "404: Not Found")

    return unhandled
