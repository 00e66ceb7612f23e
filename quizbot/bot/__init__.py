"""The Discord bot: a thin layer that parses interactions, calls services, renders results."""
