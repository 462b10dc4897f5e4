"""Fixtures of the views/project tests: sample view rows shared by the renderer tests."""

from __future__ import annotations

import os
import tempfile

# matplotlib writes its font cache under MPLCONFIGDIR (default: the user's home); keep it
# in a throwaway folder so tests never touch a real home.
os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mpl-"))
