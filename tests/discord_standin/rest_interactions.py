"""Interaction callbacks and the interaction webhook (original response and follow-ups).

Timing rules: the initial callback must arrive within ``response_deadline`` (3 s on Discord) of the
INTERACTION_CREATE, once; the token then serves follow-ups for ``token_lifetime`` (15 min).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from .errors import (
    ALREADY_ACKNOWLEDGED,
    INVALID_WEBHOOK_TOKEN,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    DiscordHTTPError,
    FormErrors,
    invalid_form_body,
    not_found,
)
from .http_api import ApiContext, Upload, current_call, json_response, no_content, read_body, truthy
from .interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CALLBACK_NAMES,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    UPDATE_MESSAGE,
    InitialResponse,
    InteractionRecord,
)
from .message_bodies import check_message_body
from .message_rules import check_autocomplete_choices, check_modal
from .models import FLAG_EPHEMERAL, FLAG_LOADING, JSON, StoredMessage
from .payloads import user_payload


def allowed_callbacks(record: InteractionRecord) -> set[int]:
    """Callback types Discord accepts for each interaction type."""
    if record.type == APPLICATION_COMMAND:
        return {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL}
    if record.type == MESSAGE_COMPONENT:
        return {
            CHANNEL_MESSAGE,
            DEFERRED_CHANNEL_MESSAGE,
            DEFERRED_UPDATE_MESSAGE,
            UPDATE_MESSAGE,
            MODAL,
        }
    if record.type == AUTOCOMPLETE:
        return {AUTOCOMPLETE_RESULT}
    if record.type == MODAL_SUBMIT:
        # Updating "the message" only makes sense when the modal was opened from a component.
        updates = {DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE} if record.source_message_id else set()
        return {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, *updates}
    return set()


def interaction_metadata(ctx: ApiContext, record: InteractionRecord) -> JSON:
    meta: JSON = {
        "id": str(record.id),
        "type": record.type,
        "user": user_payload(ctx.world.users[record.user_id]),
        "authorizing_integration_owners": {"0": str(record.guild_id or 0)},
    }
    if record.type == APPLICATION_COMMAND and record.name:
        meta.update(name=record.name, command_type=1)
    if record.source_message_id and record.type == MESSAGE_COMPONENT:
        meta["interacted_message_id"] = str(record.source_message_id)
    if record.parent is not None and record.type == MODAL_SUBMIT:
        meta["triggering_interaction_metadata"] = interaction_metadata(ctx, record.parent)
    return meta


def routes(ctx: ApiContext) -> list[web.RouteDef]:
    world = ctx.world
    settings = ctx.settings

    def now() -> float:
        return asyncio.get_running_loop().time()

    # --- the initial callback -----------------------------------------------------------------

    def callback_target(request: web.Request) -> InteractionRecord:
        raw_id, token = request.match_info["interaction_id"], request.match_info["token"]
        record = ctx.interactions.get(int(raw_id)) if raw_id.isdigit() else None
        if record is None or record.token != token:
            raise not_found(UNKNOWN_INTERACTION, "interaction", rule="interaction.unknown")
        current_call().interaction = record
        return record

    def check_can_acknowledge(record: InteractionRecord) -> None:
        if record.response is not None:
            raise DiscordHTTPError(
                400,
                ALREADY_ACKNOWLEDGED,
                "Interaction has already been acknowledged.",
                rule="interaction.already_acknowledged",
            )
        if record.sent_at is None or now() - record.sent_at > settings.response_deadline:
            record.expired = True
            raise not_found(
                UNKNOWN_INTERACTION, "interaction", rule="interaction.response_deadline"
            )

    def respond_message(
        record: InteractionRecord, data: JSON, uploads: list[Upload], *, loading: bool
    ) -> StoredMessage:
        channel = world.channels[record.channel_id]
        ephemeral = int(data.get("flags") or 0) & FLAG_EPHEMERAL
        extra = (FLAG_EPHEMERAL if ephemeral else 0) | (FLAG_LOADING if loading else 0)
        files = ctx.store_uploads(channel.id, uploads, ephemeral=bool(ephemeral))
        return world.create_message(
            channel,
            world.bot,
            {} if loading else data,
            files,
            message_type=20 if record.type == APPLICATION_COMMAND else 0,
            extra_flags=extra,
            interaction_id=record.id,
            webhook_id=world.application_id,
            application_id=world.application_id,
            interaction_metadata=interaction_metadata(ctx, record),
            visible_to=record.user_id if ephemeral else None,
        )

    def apply_callback(
        record: InteractionRecord, ctype: int, data: JSON, uploads: list[Upload]
    ) -> StoredMessage | None:
        """Validate the callback data for its type, then perform its effect."""
        if ctype == CHANNEL_MESSAGE:
            check_message_body(data, file_count=len(uploads), prefix=("data",))
            message = respond_message(record, data, uploads, loading=False)
            record.original_message_id = message.id
            return message
        if ctype == DEFERRED_CHANNEL_MESSAGE:
            message = respond_message(record, data, [], loading=True)
            record.original_message_id = message.id
            return message
        if ctype in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            source = record.source_message
            record.original_message_id = record.source_message_id
            if ctype == UPDATE_MESSAGE and source is not None:
                check_message_body(data, file_count=len(uploads), prefix=("data",), existing=source)
                files = ctx.store_uploads(source.channel_id, uploads, ephemeral=source.ephemeral)
                world.edit_message(source, data, files)
            return source
        errors = FormErrors()
        if ctype == MODAL:
            check_modal(data, ("data",), errors)
        elif ctype == AUTOCOMPLETE_RESULT:
            check_autocomplete_choices(data, ("data",), errors)
        if errors:
            family = "modal" if ctype == MODAL else "autocomplete"
            raise invalid_form_body(errors, f"{family}.invalid")
        return None

    async def callback(request: web.Request) -> web.Response:
        record = callback_target(request)
        body, uploads = await read_body(request)
        # Checked after the body arrived, so two racing callbacks cannot both be accepted.
        check_can_acknowledge(record)
        ctype = body.get("type")
        data: JSON = body.get("data") or {}
        if ctype not in allowed_callbacks(record):
            errors = FormErrors()
            name = CALLBACK_NAMES.get(ctype, repr(ctype)) if isinstance(ctype, int) else repr(ctype)
            errors.add(
                ("type",),
                "INTERACTION_RESPONSE_TYPE_INVALID",
                f"Callback type {name} is not valid for interaction type {record.type}",
            )
            raise invalid_form_body(errors, "interaction.callback_type")
        assert isinstance(ctype, int)
        message = apply_callback(record, ctype, data, uploads)
        elapsed = now() - (record.sent_at or now())
        record.response = InitialResponse(type=ctype, data=body.get("data"), elapsed=elapsed)
        world.changes.notify()
        if not truthy(request.query.get("with_response")):
            return no_content()
        result: JSON = {
            "interaction": {
                "id": str(record.id),
                "type": record.type,
                "response_message_loading": ctype == DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": bool(message and message.ephemeral),
            },
            "resource": {"type": ctype},
        }
        if message is not None:
            result["interaction"]["response_message_id"] = str(message.id)
            result["resource"]["message"] = world.message_json(message)
        return json_response(result)

    # --- the interaction webhook --------------------------------------------------------------

    def webhook_target(request: web.Request) -> InteractionRecord:
        if request.match_info["app_id"] != str(world.application_id):
            raise not_found(UNKNOWN_WEBHOOK, "Webhook", rule="webhook.unknown")
        record = ctx.interactions_by_token.get(request.match_info["token"])
        if record is None:
            raise not_found(UNKNOWN_WEBHOOK, "Webhook", rule="webhook.unknown")
        current_call().interaction = record
        if record.sent_at is not None and now() - record.sent_at > settings.token_lifetime:
            raise DiscordHTTPError(
                401,
                INVALID_WEBHOOK_TOKEN,
                "Invalid Webhook Token",
                rule="interaction.token_expired",
            )
        if record.response is None:
            # The token only becomes a webhook once the interaction is acknowledged.
            raise not_found(UNKNOWN_WEBHOOK, "Webhook", rule="interaction.followup_before_response")
        return record

    def owned_message(record: InteractionRecord, raw: str) -> StoredMessage:
        if raw == "@original":
            message_id = record.original_message_id
        else:
            message_id = int(raw) if raw.isdigit() else None
            if message_id not in record.followup_ids and message_id != record.original_message_id:
                message_id = None
        message = world.messages.get(message_id) if message_id else None
        if message is None or message.deleted:
            raise not_found(UNKNOWN_MESSAGE, "Message")
        return message

    async def followup(request: web.Request) -> web.Response:
        record = webhook_target(request)
        body, uploads = await read_body(request)
        check_message_body(body, file_count=len(uploads))
        original = record.original_message
        if original is not None and original.loading and original.interaction_id == record.id:
            # The first follow-up after a deferral fills the "thinking" message; it keeps the
            # deferral's ephemerality whatever flags the follow-up carries.
            body = dict(body)
            body.pop("flags", None)
            files = ctx.store_uploads(original.channel_id, uploads, ephemeral=original.ephemeral)
            message = world.edit_message(original, body, files, finish_loading=True)
        else:
            channel = world.channels[record.channel_id]
            ephemeral = bool(int(body.get("flags") or 0) & FLAG_EPHEMERAL)
            meta = interaction_metadata(ctx, record)
            if record.original_message_id:
                meta["original_response_message_id"] = str(record.original_message_id)
            files = ctx.store_uploads(channel.id, uploads, ephemeral=ephemeral)
            message = world.create_message(
                channel,
                world.bot,
                body,
                files,
                extra_flags=FLAG_EPHEMERAL if ephemeral else 0,
                interaction_id=record.id,
                webhook_id=world.application_id,
                application_id=world.application_id,
                interaction_metadata=meta,
                visible_to=record.user_id if ephemeral else None,
            )
        record.followup_ids.append(message.id)
        world.changes.notify()
        if truthy(request.query.get("wait")):
            return json_response(world.message_json(message))
        return no_content()

    async def get_message(request: web.Request) -> web.Response:
        record = webhook_target(request)
        return json_response(
            world.message_json(owned_message(record, request.match_info["message_id"]))
        )

    async def edit_message(request: web.Request) -> web.Response:
        record = webhook_target(request)
        message = owned_message(record, request.match_info["message_id"])
        body, uploads = await read_body(request)
        check_message_body(
            body, file_count=len(uploads), existing=None if message.loading else message
        )
        files = ctx.store_uploads(message.channel_id, uploads, ephemeral=message.ephemeral)
        world.edit_message(message, body, files, finish_loading=message.loading)
        return json_response(world.message_json(message))

    async def delete_message(request: web.Request) -> web.Response:
        record = webhook_target(request)
        world.delete_message(owned_message(record, request.match_info["message_id"]))
        return no_content()

    base = "/webhooks/{app_id}/{token}"
    return [
        web.post("/interactions/{interaction_id}/{token}/callback", callback),
        web.post(base, followup),
        web.get(base + "/messages/{message_id}", get_message),
        web.patch(base + "/messages/{message_id}", edit_message),
        web.delete(base + "/messages/{message_id}", delete_message),
    ]
