"""A synthetic psychology practice (``generate``) served over the vendors' APIs (``server``).

Everything in it is invented. Tests and the demo point connectors at it with
``LORCHESTRA_SANDBOX_URL`` and the credentials of ``server.sandbox_env()``.
"""
