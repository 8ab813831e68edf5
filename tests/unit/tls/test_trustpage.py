"""The trust page and the iPhone/iPad profile: pure, checked here; served in test_https."""

from __future__ import annotations

import datetime
import plistlib
import uuid

import pytest

from hubd.tls import ca, trustpage

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.timezone.utc)
ROOT, _KEY = ca.make_root("jupyter", "box", NOW, 3650)


@pytest.mark.parametrize(
    ("agent", "platform"),
    [
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15", "ios"),
        ("Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15", "ios"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124", "android"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605", "macos"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124", "windows"),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124", "linux"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "firefox"),
        ("Mozilla/5.0 (Windows NT 10.0; rv:125.0) Gecko/20100101 Firefox/125.0", "firefox"),
        ("curl/8.0", "other"),
    ],
)
def test_platform_of(agent: str, platform: str) -> None:
    assert trustpage.platform_of(agent) == platform


def test_the_page_has_every_platform_the_fingerprint_and_the_https_origin() -> None:
    page = trustpage.render_page(trustpage.PageFacts(ROOT, 8443, "jupyter.local"))
    assert ca.fingerprint(ROOT) in page
    for platform, _ in trustpage.PLATFORMS:
        assert f'data-platform="{platform}"' in page
    assert "Certificate Trust Settings" in page and trustpage.MOBILECONFIG in page
    assert "var port = 8443" in page and trustpage.PROBE_PATH in page


def test_the_profile_holds_the_root() -> None:
    profile = plistlib.loads(trustpage.mobileconfig(ROOT, "jupyter.local"))
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    (payload,) = profile["PayloadContent"]
    assert payload["PayloadType"] == "com.apple.security.root"
    assert payload["PayloadContent"] == ca.der(ROOT)
    ids = [uuid.UUID(profile["PayloadUUID"]), uuid.UUID(payload["PayloadUUID"])]
    assert ids[0] != ids[1]
    # The same root gives the same profile: installing it again replaces, not duplicates.
    again = plistlib.loads(trustpage.mobileconfig(ROOT, "jupyter.local"))
    assert again["PayloadUUID"] == profile["PayloadUUID"]
