"""Pure decisions: gate rules, state transitions, YAML edits, report mapping.

No kopf, kubernetes_asyncio, httpx or aiohttp imports (import-linter enforces it).
"""
