"""The page plain HTTP serves: a device that trusts hubd's root goes straight on to HTTPS, one
that does not is shown how to trust it, for its platform, with the root's fingerprint.

Pure: the proxy's page server (hubd/stack/proxy_tls.py) serves what this renders. The platform
is read from the User-Agent once, by the page itself (the patterns below go into it as JSON),
so the same rules are unit-tested here; without JavaScript every platform's steps show.
"""

from __future__ import annotations

import html
import json
import plistlib
import re
import uuid
from dataclasses import dataclass

from cryptography import x509

from hubd.tls import ca

ROOT_CRT = "hubd-root.crt"
MOBILECONFIG = "hubd.mobileconfig"
CRT_TYPE = "application/x-x509-ca-cert"
MOBILECONFIG_TYPE = "application/x-apple-aspen-config"
# Answered by configurable-http-proxy itself over HTTPS: the page's check that this device
# trusts the root (the request fails on a certificate error).
PROBE_PATH = "/_chp_healthz"

# First match wins. iPadOS 13+ calls itself a Mac: the page also checks for touch.
PLATFORMS: tuple[tuple[str, str], ...] = (
    ("firefox", r"Firefox/"),
    ("ios", r"iPhone|iPad|iPod"),
    ("android", r"Android"),
    ("windows", r"Windows"),
    ("macos", r"Macintosh|Mac OS X"),
    ("linux", r"Linux|X11|CrOS"),
)


def platform_of(user_agent: str) -> str:
    """The platform whose steps a browser gets; "other" shows them all."""
    for name, pattern in PLATFORMS:
        if re.search(pattern, user_agent):
            return name
    return "other"


@dataclass(frozen=True)
class PageFacts:
    root: x509.Certificate
    https_port: int
    hub_name: str  # "jupyter.local"


_STEPS: dict[str, tuple[str, list[str]]] = {
    "ios": (
        "iPhone or iPad",
        [
            f'Tap <a href="/{MOBILECONFIG}">Download the profile</a> and allow it.',
            "Open Settings &rarr; <b>Profile Downloaded</b> &rarr; Install (enter your passcode).",
            "Then Settings &rarr; General &rarr; About &rarr; <b>Certificate Trust Settings</b>: "
            "switch on the hubd root.",
            "Come back to this page.",
        ],
    ),
    "android": (
        "Android",
        [
            f'Tap <a href="/{ROOT_CRT}">Download the certificate</a>.',
            "Settings &rarr; Security &rarr; More security settings &rarr; Encryption &amp; "
            "credentials &rarr; <b>Install a certificate</b> &rarr; <b>CA certificate</b>, "
            "and pick the downloaded file.",
            "Come back to this page.",
        ],
    ),
    "macos": (
        "Mac",
        [
            f'Click <a href="/{ROOT_CRT}">Download the certificate</a> and open it: Keychain '
            "Access adds it.",
            "In Keychain Access double-click the hubd root, open <b>Trust</b>, set "
            "<b>When using this certificate</b> to <b>Always Trust</b>.",
            "Reload this page.",
        ],
    ),
    "windows": (
        "Windows",
        [
            f'Click <a href="/{ROOT_CRT}">Download the certificate</a> and open it.',
            "<b>Install Certificate</b> &rarr; Current User &rarr; <b>Place all certificates "
            "in the following store</b> &rarr; Trusted Root Certification Authorities.",
            "Reload this page (restart the browser if it still warns).",
        ],
    ),
    "linux": (
        "Linux",
        [
            f'Download <a href="/{ROOT_CRT}">the certificate</a>.',
            "Chrome/Chromium: Settings &rarr; Privacy and security &rarr; Security &rarr; "
            "Manage certificates &rarr; Authorities &rarr; Import, tick "
            "<b>Trust this certificate for identifying websites</b>.",
            "On the hub's own machine: <code>sudo hubd trust install</code> (the system) and "
            "<code>hubd trust install --browsers-only</code> (your browsers) do all of it.",
        ],
    ),
    "firefox": (
        "Firefox",
        [
            f'Click <a href="/{ROOT_CRT}">the certificate</a>: Firefox asks what to trust it '
            "for: tick <b>Trust this CA to identify websites</b>.",
            "Reload this page.",
        ],
    ),
}

_SCRIPT = """
(function () {
  var ua = navigator.userAgent, plats = __PLATFORMS__, mine = "other";
  for (var i = 0; i < plats.length; i++) {
    if (new RegExp(plats[i][1]).test(ua)) { mine = plats[i][0]; break; }
  }
  if (mine === "macos" && navigator.maxTouchPoints > 1) { mine = "ios"; }
  if (mine !== "other") {
    var all = document.querySelectorAll("section[data-platform]");
    for (var j = 0; j < all.length; j++) {
      all[j].hidden = all[j].getAttribute("data-platform") !== mine;
    }
  }
  document.body.setAttribute("data-detected", mine);
  var port = __PORT__, host = location.hostname.indexOf(":") >= 0 ? "[" + location.hostname + "]"
    : location.hostname;
  var origin = "https://" + host + (port === 443 ? "" : ":" + port);
  var link = document.getElementById("https-link");
  link.href = origin + location.pathname + location.search;
  link.textContent = origin + "/";
  fetch(origin + "__PROBE__", {mode: "no-cors", cache: "no-store"}).then(function () {
    document.body.setAttribute("data-trusted", "yes");
    location.replace(origin + location.pathname + location.search + location.hash);
  }, function () {
    document.body.setAttribute("data-trusted", "no");
  });
})();
"""


def render_page(facts: PageFacts) -> str:
    fingerprint = ca.fingerprint(facts.root)
    sections = "\n".join(
        f'<section data-platform="{key}"><h2>{title}</h2><ol>'
        + "".join(f"<li>{step}</li>" for step in steps)
        + "</ol></section>"
        for key, (title, steps) in _STEPS.items()
    )
    script = (
        _SCRIPT.replace("__PLATFORMS__", json.dumps(PLATFORMS))
        .replace("__PORT__", str(int(facts.https_port)))
        .replace("__PROBE__", PROBE_PATH)
    )
    name = html.escape(facts.hub_name)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Trust {name}</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 40em; margin: 1em auto; padding: 0 1em; }}
code.fp {{ word-break: break-all; font-size: 0.85em; }}
section {{ border-top: 1px solid #ddd; }}
</style></head>
<body data-trusted="checking">
<h1>One step before {name}</h1>
<p>{name} keeps your password and notebooks private with HTTPS. This device does not trust
the hub's certificate yet; once it does, this page takes you to
<a id="https-link" href="#">the secure address</a> by itself.</p>
<p>The certificate can vouch for this hub only (its name and local network addresses), nothing
else. Compare its SHA-256 fingerprint with the one <code>hubd status</code> or the tray shows:</p>
<p><code class="fp" id="fingerprint">{fingerprint}</code></p>
{sections}
<p>Downloads: <a href="/{ROOT_CRT}">{ROOT_CRT}</a> &middot;
<a href="/{MOBILECONFIG}">{MOBILECONFIG}</a> (iPhone, iPad)</p>
<script>{script}</script>
</body></html>
"""


def mobileconfig(root: x509.Certificate, hub_name: str) -> bytes:
    """An Apple configuration profile that installs the root (a com.apple.security.root
    payload). The UUIDs derive from the root, so the same root gives the same profile and a
    device replaces it rather than collecting copies."""
    fingerprint = ca.fingerprint(root).replace(":", "")
    base = uuid.uuid5(uuid.NAMESPACE_URL, f"hubd:{fingerprint}")
    payload = {
        "PayloadType": "com.apple.security.root",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"local.hubd.root.{fingerprint[:16]}",
        "PayloadUUID": str(uuid.uuid5(base, "certificate")).upper(),
        "PayloadDisplayName": f"hubd root for {hub_name}",
        "PayloadCertificateFileName": ROOT_CRT,
        "PayloadContent": ca.der(root),
    }
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"local.hubd.profile.{fingerprint[:16]}",
        "PayloadUUID": str(base).upper(),
        "PayloadDisplayName": f"Trust {hub_name}",
        "PayloadDescription": (
            f"Lets this device reach {hub_name} over HTTPS. The certificate can vouch for "
            f"this hub only. SHA-256 {ca.fingerprint(root)}"
        ),
        "PayloadOrganization": "hubd",
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [payload],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)
