"""Message, embed, component, modal and autocomplete rules from Discord's documentation.

Sources: resources/message (create message, embed limits), interactions/message-components,
interactions/receiving-and-responding (modal and autocomplete callback data).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .errors import FormErrors, Path
from .models import FLAG_COMPONENTS_V2

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_ACTION_ROWS = 5
MAX_ROW_COMPONENTS = 5
MAX_V2_COMPONENTS = 40
MAX_FILES = 10
MAX_SELECT_OPTIONS = 25

ACTION_ROW, BUTTON, STRING_SELECT, TEXT_INPUT = 1, 2, 3, 4
AUTO_SELECTS = {5, 6, 7, 8}  # user, role, mentionable, channel selects
SELECTS = {STRING_SELECT, *AUTO_SELECTS}
TEXT_DISPLAY, LABEL = 10, 18
LINK_STYLE, PREMIUM_STYLE = 5, 6


def _max_length(value: Any, limit: int, path: Path, errors: FormErrors) -> None:
    if isinstance(value, str) and len(value) > limit:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _bad_length(value: Any, low: int, high: int, path: Path, errors: FormErrors) -> None:
    if value is None:
        errors.add(path, "BASE_TYPE_REQUIRED", "This field is required")
    elif not isinstance(value, str) or not low <= len(value) <= high:
        errors.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


# --- embeds -----------------------------------------------------------------------------------


def embed_text_size(embed: dict[str, Any]) -> int:
    """Characters that count towards the 6000 total across a message's embeds."""
    size = len(str(embed.get("title") or "")) + len(str(embed.get("description") or ""))
    for fld in embed.get("fields") or []:
        if isinstance(fld, dict):
            size += len(str(fld.get("name") or "")) + len(str(fld.get("value") or ""))
    size += len(str((embed.get("footer") or {}).get("text") or ""))
    size += len(str((embed.get("author") or {}).get("name") or ""))
    return size


def _check_embed(embed: Any, path: Path, errors: FormErrors) -> None:
    if not isinstance(embed, dict):
        errors.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    _max_length(embed.get("title"), 256, (*path, "title"), errors)
    _max_length(embed.get("description"), 4096, (*path, "description"), errors)
    fields = embed.get("fields") or []
    if len(fields) > 25:
        errors.add((*path, "fields"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for index, fld in enumerate(fields):
        fpath = (*path, "fields", index)
        if not isinstance(fld, dict):
            errors.add(fpath, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            continue
        _bad_length(fld.get("name"), 1, 256, (*fpath, "name"), errors)
        _bad_length(fld.get("value"), 1, 1024, (*fpath, "value"), errors)
    footer = embed.get("footer")
    if isinstance(footer, dict):
        _bad_length(footer.get("text"), 1, 2048, (*path, "footer", "text"), errors)
    author = embed.get("author")
    if isinstance(author, dict):
        _bad_length(author.get("name"), 1, 256, (*path, "author", "name"), errors)
    color = embed.get("color")
    if color is not None and not (isinstance(color, int) and 0 <= color <= 0xFFFFFF):
        errors.add(
            (*path, "color"),
            "NUMBER_TYPE_MAX",
            "int value should be less than or equal to 16777215.",
        )


def check_embeds(embeds: Any, path: Path, errors: FormErrors) -> None:
    if embeds is None:
        return
    if not isinstance(embeds, list):
        errors.add(path, "BASE_TYPE_ARRAY", "Must be an array.")
        return
    if len(embeds) > MAX_EMBEDS:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
    for index, embed in enumerate(embeds):
        _check_embed(embed, (*path, index), errors)
    total = sum(embed_text_size(e) for e in embeds if isinstance(e, dict))
    if total > MAX_EMBED_TOTAL:
        errors.add(
            path, "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}"
        )


# --- components -------------------------------------------------------------------------------


def _check_custom_id(component: dict[str, Any], path: Path, errors: FormErrors) -> None:
    _bad_length(component.get("custom_id"), 1, 100, (*path, "custom_id"), errors)


def _check_button(button: dict[str, Any], path: Path, errors: FormErrors) -> None:
    style = button.get("style")
    if style not in (1, 2, 3, 4, 5, 6):
        errors.add(
            (*path, "style"), "BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3, 4, 5, 6)."
        )
    _max_length(button.get("label"), 80, (*path, "label"), errors)
    if style == LINK_STYLE:
        if not button.get("url"):
            errors.add((*path, "url"), "BASE_TYPE_REQUIRED", "This field is required")
        if "custom_id" in button:
            errors.add(
                (*path, "custom_id"),
                "COMPONENT_INVALID_CUSTOM_ID",
                "Link buttons cannot have a custom_id",
            )
        _max_length(button.get("url"), 512, (*path, "url"), errors)
    elif style == PREMIUM_STYLE:
        if not button.get("sku_id"):
            errors.add((*path, "sku_id"), "BASE_TYPE_REQUIRED", "This field is required")
    else:
        _check_custom_id(button, path, errors)
        if "url" in button:
            errors.add((*path, "url"), "COMPONENT_INVALID_URL", "Only link buttons can have a url")


def _check_select(select: dict[str, Any], path: Path, errors: FormErrors) -> None:
    _check_custom_id(select, path, errors)
    _max_length(select.get("placeholder"), 150, (*path, "placeholder"), errors)
    min_values, max_values = select.get("min_values", 1), select.get("max_values", 1)
    if not (isinstance(min_values, int) and 0 <= min_values <= 25):
        errors.add(
            (*path, "min_values"), "NUMBER_TYPE_MAX", "int value should be between 0 and 25."
        )
    if not (isinstance(max_values, int) and 1 <= max_values <= 25):
        errors.add(
            (*path, "max_values"), "NUMBER_TYPE_MAX", "int value should be between 1 and 25."
        )
    elif isinstance(min_values, int) and min_values > max_values:
        errors.add(
            (*path, "min_values"),
            "SELECT_COMPONENT_MIN_VALUES_TOO_LARGE",
            "min_values must be less than or equal to max_values",
        )
    if select.get("type") != STRING_SELECT:
        return
    options = select.get("options") or []
    if not 1 <= len(options) <= MAX_SELECT_OPTIONS:
        errors.add(
            (*path, "options"),
            "BASE_TYPE_BAD_LENGTH",
            f"Must be between 1 and {MAX_SELECT_OPTIONS} in length.",
        )
    values: set[str] = set()
    for index, option in enumerate(options):
        opath = (*path, "options", index)
        _bad_length(option.get("label"), 1, 100, (*opath, "label"), errors)
        _bad_length(option.get("value"), 1, 100, (*opath, "value"), errors)
        _max_length(option.get("description"), 100, (*opath, "description"), errors)
        if option.get("value") in values:
            errors.add(
                (*opath, "value"),
                "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED",
                "Select component option values cannot be duplicated",
            )
        values.add(option.get("value"))
    if isinstance(max_values, int) and max_values > len(options) >= 1:
        errors.add(
            (*path, "max_values"),
            "NUMBER_TYPE_MAX",
            f"int value should be less than or equal to {len(options)}.",
        )


def _check_interactive(component: dict[str, Any], path: Path, errors: FormErrors) -> None:
    ctype = component.get("type")
    if ctype == BUTTON:
        _check_button(component, path, errors)
    elif ctype in SELECTS:
        _check_select(component, path, errors)


def _check_action_row(
    row: dict[str, Any], path: Path, errors: FormErrors, *, check_children: bool = True
) -> None:
    children = row.get("components")
    if not isinstance(children, list) or not children:
        errors.add(
            (*path, "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
        )
        return
    if len(children) > MAX_ROW_COMPONENTS:
        errors.add(
            (*path, "components"),
            "BASE_TYPE_MAX_LENGTH",
            f"Must be {MAX_ROW_COMPONENTS} or fewer in length.",
        )
    has_select = any(isinstance(c, dict) and c.get("type") in SELECTS for c in children)
    if has_select and len(children) > 1:
        # A select menu occupies the whole width of its row.
        errors.add(
            (*path, "components"),
            "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
            "The specified component exceeds the maximum width",
        )
    for index, child in enumerate(children):
        cpath = (*path, "components", index)
        if not isinstance(child, dict) or child.get("type") not in (BUTTON, *SELECTS):
            errors.add(
                (*cpath, "type"),
                "COMPONENT_TYPE_INVALID",
                "Component type is not allowed in a message row",
            )
        elif check_children:
            _check_interactive(child, cpath, errors)


def _walk(components: list[Any], path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every component with its JSON path (rows, containers, sections, labels)."""
    for index, component in enumerate(components):
        if not isinstance(component, dict):
            continue
        cpath = (*path, index)
        yield cpath, component
        children = component.get("components")
        if isinstance(children, list):
            yield from _walk(children, (*cpath, "components"))
        for key in ("accessory", "component"):
            child = component.get(key)
            if isinstance(child, dict):
                yield (*cpath, key), child
                nested = child.get("components")
                if isinstance(nested, list):
                    yield from _walk(nested, (*cpath, key, "components"))


def _check_unique_custom_ids(components: list[Any], path: Path, errors: FormErrors) -> None:
    seen: set[str] = set()
    for cpath, component in _walk(components, path):
        custom_id = component.get("custom_id")
        if not isinstance(custom_id, str):
            continue
        if custom_id in seen:
            errors.add(
                (*cpath, "custom_id"),
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            )
        seen.add(custom_id)


def check_components(components: Any, path: Path, errors: FormErrors, *, flags: int) -> None:
    if components is None:
        return
    if not isinstance(components, list):
        errors.add(path, "BASE_TYPE_ARRAY", "Must be an array.")
        return
    if flags & FLAG_COMPONENTS_V2:
        total = sum(1 for _ in _walk(components, path))
        if total > MAX_V2_COMPONENTS:
            errors.add(
                path,
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_V2_COMPONENTS} or fewer components in total.",
            )
        for cpath, component in _walk(components, path):
            if component.get("type") == ACTION_ROW:
                # Its children are visited by the walk itself.
                _check_action_row(component, cpath, errors, check_children=False)
            else:
                _check_interactive(component, cpath, errors)
    else:
        if len(components) > MAX_ACTION_ROWS:
            errors.add(
                path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ACTION_ROWS} or fewer in length."
            )
        for index, row in enumerate(components):
            rpath = (*path, index)
            if not isinstance(row, dict) or row.get("type") != ACTION_ROW:
                errors.add(
                    (*rpath, "type"),
                    "COMPONENT_TYPE_INVALID",
                    "Top-level components must be action rows without IS_COMPONENTS_V2",
                )
                continue
            _check_action_row(row, rpath, errors)
    _check_unique_custom_ids(components, path, errors)


# --- whole messages ---------------------------------------------------------------------------


def check_allowed_mentions(value: Any, path: Path, errors: FormErrors) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        errors.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    parse = value.get("parse") or []
    for index, item in enumerate(parse):
        if item not in ("roles", "users", "everyone"):
            errors.add(
                (*path, "parse", index),
                "BASE_TYPE_CHOICES",
                "Value must be one of ('roles', 'users', 'everyone').",
            )
    for kind in ("users", "roles"):
        ids = value.get(kind)
        if ids and kind in parse:
            errors.add(
                (*path, "parse"),
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
            )
        if ids and len(ids) > 100:
            errors.add((*path, kind), "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")


def check_message(
    payload: dict[str, Any], path: Path, errors: FormErrors, *, file_count: int
) -> None:
    """Field rules shared by channel messages, interaction responses, follow-ups and edits."""
    flags = payload.get("flags") or 0
    content = payload.get("content")
    if content is not None and not isinstance(content, str):
        errors.add((*path, "content"), "BASE_TYPE_STRING", "Must be a string.")
    _max_length(content, MAX_CONTENT, (*path, "content"), errors)
    check_embeds(payload.get("embeds"), (*path, "embeds"), errors)
    check_components(payload.get("components"), (*path, "components"), errors, flags=flags)
    check_allowed_mentions(payload.get("allowed_mentions"), (*path, "allowed_mentions"), errors)
    if flags & FLAG_COMPONENTS_V2 and (content or payload.get("embeds")):
        errors.add(
            (*path, "flags"),
            "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
            "The 'content' and 'embeds' fields cannot be used when IS_COMPONENTS_V2 is set",
        )
    attachments = payload.get("attachments")
    if file_count > MAX_FILES or (isinstance(attachments, list) and len(attachments) > MAX_FILES):
        errors.add(
            (*path, "attachments"),
            "BASE_TYPE_MAX_LENGTH",
            f"Must be {MAX_FILES} or fewer in length.",
        )


def is_empty_message(payload: dict[str, Any], *, file_count: int) -> bool:
    """Discord refuses a message with nothing to show (error 50006)."""
    return not (
        payload.get("content")
        or payload.get("embeds")
        or payload.get("components")
        or payload.get("sticker_ids")
        or payload.get("poll")
        or payload.get("attachments")
        or file_count
    )


# --- modal and autocomplete callback data ------------------------------------------------------


def _check_text_input(
    text_input: dict[str, Any], path: Path, errors: FormErrors, *, in_label: bool
) -> None:
    _check_custom_id(text_input, path, errors)
    if text_input.get("style") not in (1, 2):
        errors.add((*path, "style"), "BASE_TYPE_CHOICES", "Value must be one of (1, 2).")
    if in_label:
        _max_length(text_input.get("label"), 45, (*path, "label"), errors)
    else:
        _bad_length(text_input.get("label"), 1, 45, (*path, "label"), errors)
    min_length, max_length = text_input.get("min_length"), text_input.get("max_length")
    if min_length is not None and not (isinstance(min_length, int) and 0 <= min_length <= 4000):
        errors.add(
            (*path, "min_length"), "NUMBER_TYPE_MAX", "int value should be between 0 and 4000."
        )
    if max_length is not None and not (isinstance(max_length, int) and 1 <= max_length <= 4000):
        errors.add(
            (*path, "max_length"), "NUMBER_TYPE_MAX", "int value should be between 1 and 4000."
        )
    if isinstance(min_length, int) and isinstance(max_length, int) and min_length > max_length:
        errors.add(
            (*path, "min_length"),
            "TEXT_INPUT_MIN_LENGTH_TOO_LARGE",
            "min_length must not exceed max_length",
        )
    _max_length(text_input.get("value"), 4000, (*path, "value"), errors)
    _max_length(text_input.get("placeholder"), 100, (*path, "placeholder"), errors)


def check_modal(data: Any, path: Path, errors: FormErrors) -> None:
    if not isinstance(data, dict):
        errors.add(path, "BASE_TYPE_REQUIRED", "This field is required")
        return
    _bad_length(data.get("title"), 1, 45, (*path, "title"), errors)
    _check_custom_id(data, path, errors)
    rows = data.get("components")
    if not isinstance(rows, list) or not 1 <= len(rows) <= 5:
        errors.add(
            (*path, "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
        )
        rows = rows if isinstance(rows, list) else []
    for index, row in enumerate(rows):
        rpath = (*path, "components", index)
        rtype = row.get("type") if isinstance(row, dict) else None
        if rtype == ACTION_ROW:
            children = row.get("components") or []
            if len(children) != 1 or children[0].get("type") != TEXT_INPUT:
                errors.add(
                    (*rpath, "components"),
                    "MODAL_ROW_INVALID",
                    "Each modal action row must hold exactly one text input",
                )
                continue
            _check_text_input(children[0], (*rpath, "components", 0), errors, in_label=False)
        elif rtype == LABEL:
            _bad_length(row.get("label"), 1, 45, (*rpath, "label"), errors)
            _max_length(row.get("description"), 100, (*rpath, "description"), errors)
            child = row.get("component")
            if isinstance(child, dict) and child.get("type") == TEXT_INPUT:
                _check_text_input(child, (*rpath, "component"), errors, in_label=True)
            elif isinstance(child, dict) and child.get("type") in SELECTS:
                _check_select(child, (*rpath, "component"), errors)
            else:
                errors.add(
                    (*rpath, "component"),
                    "COMPONENT_TYPE_INVALID",
                    "A label must wrap a text input or select",
                )
        elif rtype != TEXT_DISPLAY:
            errors.add(
                (*rpath, "type"),
                "COMPONENT_TYPE_INVALID",
                "Modals accept action rows, labels and text displays",
            )
    _check_unique_custom_ids(rows, (*path, "components"), errors)


def check_autocomplete_choices(data: Any, path: Path, errors: FormErrors) -> None:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list):
        errors.add((*path, "choices"), "BASE_TYPE_REQUIRED", "This field is required")
        return
    if len(choices) > 25:
        errors.add((*path, "choices"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for index, choice in enumerate(choices):
        cpath = (*path, "choices", index)
        _bad_length(choice.get("name"), 1, 100, (*cpath, "name"), errors)
        value = choice.get("value")
        if isinstance(value, str):
            _max_length(value, 100, (*cpath, "value"), errors)
