"""Slash-command cogs; each module ends with `async def setup(bot)`."""
