"""How long a test waits before it calls a thing hung.

Every wait in the tests is a deadline that returns as soon as its condition holds, so a longer
deadline costs nothing when all is well; it only decides when a slow answer counts as none.
The figures written in the tests are what an idle machine needs with room to spare; on a
machine with other work running (CI beside a build, two suites at once) everything takes
several times longer, so the helpers stretch every deadline by HUBDTEST_PATIENCE (default
4). Nothing that a test measures as a result (an outage, a gap) is stretched.
"""

from __future__ import annotations

import os

PATIENCE = float(os.environ.get("HUBDTEST_PATIENCE") or 4)


def patient(timeout_s: float) -> float:
    """`timeout_s` as a deadline that a loaded machine does not break."""
    return timeout_s * PATIENCE
