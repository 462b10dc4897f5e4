"""Sources: vendor connectors behind one interface, the ``sources.yaml`` catalog, the sandbox.

``connectors`` fetch native JSON objects from Gmail, Exchange (Graph), Dataverse,
Stripe, Google Forms and JSONL drop folders; ``catalog`` validates stream
settings; ``sandbox`` is a loopback server of a synthetic practice speaking the
same wire formats. See docs/sources.md.
"""
