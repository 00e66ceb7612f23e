"""Application command rules, https://discord.com/developers/docs/interactions/application-commands"""

from __future__ import annotations

import unicodedata
from typing import Any

from .errors import FormErrors, Path

MAX_CHAT_INPUT_COMMANDS = 100
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_COMMAND_SIZE = 8000

CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = range(3, 12)
VALUE_TYPES = {STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT}
CHOICE_TYPES = {STRING, INTEGER, NUMBER}
MAX_SAFE_INTEGER = 2**53


def _in_allowed_script(char: str) -> bool:
    # \p{sc=Deva} and \p{sc=Thai}: these scripts' combining marks are neither L nor N.
    code = ord(char)
    return 0x0900 <= code <= 0x097F or 0xA8E0 <= code <= 0xA8FF or 0x0E00 <= code <= 0x0E7F


def is_valid_chat_input_name(name: str) -> bool:
    """``^[-_\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$`` without the third-party regex module."""
    if not 1 <= len(name) <= 32:
        return False
    return all(
        ch in "-_" or unicodedata.category(ch)[0] in "LN" or _in_allowed_script(ch) for ch in name
    )


def is_lowercase(name: str) -> bool:
    """Discord wants lowercase wherever a character has a lowercase variant."""
    return all(ch.lower() == ch or len(ch.lower()) != 1 for ch in name)


def _check_name(name: Any, path: Path, errors: FormErrors, *, chat_input: bool) -> None:
    if not isinstance(name, str):
        errors.add(path, "BASE_TYPE_REQUIRED", "This field is required")
        return
    if chat_input:
        if not is_valid_chat_input_name(name) or not is_lowercase(name):
            errors.add(path, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    elif not 1 <= len(name) <= 32:
        errors.add(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")


def _check_description(desc: Any, path: Path, errors: FormErrors) -> None:
    if not isinstance(desc, str) or not 1 <= len(desc) <= 100:
        errors.add(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")


def _check_localizations(
    data: dict[str, Any], path: Path, errors: FormErrors, *, chat_input: bool
) -> None:
    for locale, value in (data.get("name_localizations") or {}).items():
        _check_name(value, (*path, "name_localizations", locale), errors, chat_input=chat_input)
    for locale, value in (data.get("description_localizations") or {}).items():
        _check_description(value, (*path, "description_localizations", locale), errors)


def _check_choices(option: dict[str, Any], path: Path, errors: FormErrors) -> None:
    choices = option.get("choices")
    if not choices:
        return
    opt_type = option.get("type")
    if opt_type not in CHOICE_TYPES:
        errors.add(
            (*path, "choices"),
            "APPLICATION_COMMAND_OPTION_CHOICES_INVALID",
            "Only string, integer and number options can have choices",
        )
        return
    if len(choices) > MAX_CHOICES:
        errors.add(
            (*path, "choices"), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length."
        )
    if option.get("autocomplete"):
        errors.add(
            (*path, "autocomplete"),
            "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID",
            "Autocomplete cannot be set when choices are present",
        )
    for index, choice in enumerate(choices):
        cpath = (*path, "choices", index)
        name = choice.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            errors.add(
                (*cpath, "name"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        for locale, value in (choice.get("name_localizations") or {}).items():
            if not isinstance(value, str) or not 1 <= len(value) <= 100:
                errors.add(
                    (*cpath, "name_localizations", locale),
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
        value = choice.get("value")
        if opt_type == STRING:
            if not isinstance(value, str) or len(value) > 100:
                errors.add(
                    (*cpath, "value"),
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
        elif opt_type == INTEGER:
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or abs(value) > MAX_SAFE_INTEGER
            ):
                errors.add((*cpath, "value"), "NUMBER_TYPE_COERCE", f'Value "{value}" is not int.')
        elif not isinstance(value, int | float) or isinstance(value, bool):
            errors.add((*cpath, "value"), "NUMBER_TYPE_COERCE", f'Value "{value}" is not a number.')


def _check_value_option(option: dict[str, Any], path: Path, errors: FormErrors) -> None:
    opt_type = option.get("type")
    _check_choices(option, path, errors)
    if option.get("autocomplete") and opt_type not in CHOICE_TYPES:
        errors.add(
            (*path, "autocomplete"),
            "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID",
            "Only string, integer and number options can autocomplete",
        )
    if opt_type not in (INTEGER, NUMBER):
        for key in ("min_value", "max_value"):
            if option.get(key) is not None:
                errors.add(
                    (*path, key), "APPLICATION_COMMAND_OPTION_INVALID", "Only for numeric options"
                )
    if opt_type != STRING:
        for key in ("min_length", "max_length"):
            if option.get(key) is not None:
                errors.add(
                    (*path, key), "APPLICATION_COMMAND_OPTION_INVALID", "Only for string options"
                )
    else:
        min_length, max_length = option.get("min_length"), option.get("max_length")
        if min_length is not None and not 0 <= min_length <= 6000:
            errors.add(
                (*path, "min_length"), "NUMBER_TYPE_MAX", "int value should be between 0 and 6000."
            )
        if max_length is not None and not 1 <= max_length <= 6000:
            errors.add(
                (*path, "max_length"), "NUMBER_TYPE_MAX", "int value should be between 1 and 6000."
            )
    if option.get("channel_types") and opt_type != CHANNEL:
        errors.add(
            (*path, "channel_types"),
            "APPLICATION_COMMAND_OPTION_INVALID",
            "Only for channel options",
        )


def _check_options(options: Any, path: Path, errors: FormErrors, *, depth: int) -> None:
    """Validate one level of options; ``depth`` 0 is the command, 1 a group or subcommand."""
    if options is None:
        return
    if not isinstance(options, list):
        errors.add(path, "BASE_TYPE_ARRAY", "Must be an array.")
        return
    if len(options) > MAX_OPTIONS:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_OPTIONS} or fewer in length.")
    types = [o.get("type") for o in options if isinstance(o, dict)]
    has_subs = any(t in (SUB_COMMAND, SUB_COMMAND_GROUP) for t in types)
    if has_subs and not all(t in (SUB_COMMAND, SUB_COMMAND_GROUP) for t in types):
        errors.add(
            path,
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Sub-command and sub-command group option types are mutually exclusive to all "
            "other types",
        )
    seen_names: set[str] = set()
    seen_optional = False
    for index, option in enumerate(options):
        opath = (*path, index)
        if not isinstance(option, dict):
            errors.add(opath, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            continue
        opt_type = option.get("type")
        name = option.get("name")
        _check_name(name, (*opath, "name"), errors, chat_input=True)
        _check_description(option.get("description"), (*opath, "description"), errors)
        _check_localizations(option, opath, errors, chat_input=True)
        if isinstance(name, str):
            if name in seen_names:
                errors.add(
                    (*opath, "name"),
                    "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                    "Option names must be unique",
                )
            seen_names.add(name)
        if opt_type == SUB_COMMAND_GROUP:
            if depth > 0:
                errors.add(
                    (*opath, "type"),
                    "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                    "Sub-command groups can only be nested in a command",
                )
            children = option.get("options") or []
            if any(isinstance(c, dict) and c.get("type") != SUB_COMMAND for c in children):
                errors.add(
                    (*opath, "options"),
                    "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                    "Sub-command groups can only contain sub-commands",
                )
            _check_options(children, (*opath, "options"), errors, depth=depth + 1)
        elif opt_type == SUB_COMMAND:
            children = option.get("options") or []
            if any(
                isinstance(c, dict) and c.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)
                for c in children
            ):
                errors.add(
                    (*opath, "options"),
                    "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                    "Sub-commands cannot contain sub-commands or groups",
                )
            _check_options(children, (*opath, "options"), errors, depth=depth + 1)
        elif opt_type in VALUE_TYPES:
            _check_value_option(option, opath, errors)
            if option.get("required"):
                if seen_optional:
                    errors.add(
                        (*opath, "required"),
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                seen_optional = True
        else:
            errors.add(
                (*opath, "type"), "BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3, ..., 11)."
            )


def _command_size(data: dict[str, Any]) -> int:
    """Characters counted by the 8000 limit: names, descriptions and choice values, recursively."""
    total = len(str(data.get("name", ""))) + len(str(data.get("description", "")))
    for choice in data.get("choices") or []:
        total += len(str(choice.get("name", ""))) + len(str(choice.get("value", "")))
    for option in data.get("options") or []:
        if isinstance(option, dict):
            total += _command_size(option)
    return total


def validate_command(data: Any, path: Path, errors: FormErrors) -> None:
    """Validate one command object as sent to a create/overwrite endpoint."""
    if not isinstance(data, dict):
        errors.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    cmd_type = data.get("type", CHAT_INPUT)
    if cmd_type not in (CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND):
        errors.add((*path, "type"), "BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3).")
        return
    chat_input = cmd_type == CHAT_INPUT
    _check_name(data.get("name"), (*path, "name"), errors, chat_input=chat_input)
    _check_localizations(data, path, errors, chat_input=chat_input)
    if chat_input:
        _check_description(data.get("description"), (*path, "description"), errors)
        _check_options(data.get("options"), (*path, "options"), errors, depth=0)
        if _command_size(data) > MAX_COMMAND_SIZE:
            errors.add(
                path,
                "APPLICATION_COMMAND_TOO_LARGE",
                f"Command exceeds maximum size ({MAX_COMMAND_SIZE})",
            )
    else:
        if data.get("description"):
            errors.add(
                (*path, "description"),
                "APPLICATION_COMMAND_INVALID_DESCRIPTION",
                "User and message commands cannot have a description",
            )
        if data.get("options"):
            errors.add(
                (*path, "options"),
                "APPLICATION_COMMAND_INVALID_OPTIONS",
                "User and message commands cannot have options",
            )
    perms = data.get("default_member_permissions")
    if perms is not None and not (isinstance(perms, str | int) and str(perms).isdigit()):
        errors.add(
            (*path, "default_member_permissions"), "NUMBER_TYPE_COERCE", "Value is not snowflake."
        )


def validate_command_list(commands: Any) -> FormErrors:
    """Validate a bulk-overwrite body: every command, unique names, the per-scope limit."""
    errors = FormErrors()
    if not isinstance(commands, list):
        errors.add((), "BASE_TYPE_ARRAY", "Must be an array.")
        return errors
    seen: set[tuple[int, str]] = set()
    for index, command in enumerate(commands):
        validate_command(command, (index,), errors)
        if isinstance(command, dict) and isinstance(command.get("name"), str):
            key = (int(command.get("type", CHAT_INPUT)), command["name"])
            if key in seen:
                errors.add(
                    (index, "name"),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                )
            seen.add(key)
    chat_inputs = sum(
        1 for c in commands if isinstance(c, dict) and c.get("type", CHAT_INPUT) == CHAT_INPUT
    )
    if chat_inputs > MAX_CHAT_INPUT_COMMANDS:
        errors.add(
            (),
            "BASE_TYPE_MAX_LENGTH",
            f"Must be {MAX_CHAT_INPUT_COMMANDS} or fewer chat input commands in length.",
        )
    return errors
