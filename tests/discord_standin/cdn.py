"""The CDN: serves attachment bytes at the URLs the stand-in hands out."""

from __future__ import annotations

from aiohttp import web

from .world import World

ATTACHMENT_ROUTE = "/cdn/attachments/{channel_id}/{attachment_id}/{filename}"


def routes(world: World) -> list[web.RouteDef]:
    async def serve_attachment(request: web.Request) -> web.Response:
        raw = request.match_info["attachment_id"]
        attachment = world.files.get(int(raw)) if raw.isdigit() else None
        if attachment is None or attachment.filename != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        mime = (attachment.content_type or "application/octet-stream").split(";")[0]
        return web.Response(body=attachment.data, content_type=mime)

    return [web.get(ATTACHMENT_ROUTE, serve_attachment)]
