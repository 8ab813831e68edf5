"""configurable-http-proxy with HTTPS: the certificate as files in the container, renewed
without a restart, and the small plain-HTTP page server beside it.

CHP reads `--ssl-key`/`--ssl-cert` once, when it starts; a restart to serve a renewed or
re-issued leaf would drop every open websocket (JupyterLab then waits 10-30 s to reconnect).
So CHP runs under a tiny Node wrapper that keeps the HTTPS server CHP creates and, on SIGHUP,
hands it the files again (`setSecureContext`): new connections get the new certificate, open
ones carry on. The same wrapper serves the trust page (hubd/tls/trustpage.py) over plain HTTP,
from files hubd puts beside the certificate, so the page changes without a restart too.
"""

from __future__ import annotations

TLS_DIR_IN_PROXY = "/etc/hubd-proxy/tls"
PAGE_DIR_IN_PROXY = "/etc/hubd-proxy/page"
WRAPPER_IN_PROXY = "/etc/hubd-proxy/hubd-proxy.js"
CERT_IN_PROXY = f"{TLS_DIR_IN_PROXY}/leaf.crt"
KEY_IN_PROXY = f"{TLS_DIR_IN_PROXY}/leaf.key"
# Inside the container: CHP's HTTPS listener and the page's plain HTTP one.
HTTPS_PORT_IN_PROXY = 8443
PAGE_PORT_IN_PROXY = 8000

WRAPPER_JS = r"""
"use strict";
// hubd: run configurable-http-proxy, reload its certificate on SIGHUP, serve the HTTP page.
const fs = require("fs"), http = require("http"), https = require("https");
const servers = [];
const createServer = https.createServer;
https.createServer = function () {
  const server = createServer.apply(this, arguments);
  servers.push(server);
  return server;
};
process.on("SIGHUP", function () {
  try {
    const context = { key: fs.readFileSync("__KEY__"), cert: fs.readFileSync("__CERT__") };
    servers.forEach(function (server) { server.setSecureContext(context); });
    console.log("hubd: serving the renewed certificate to new connections");
  } catch (err) {
    console.error("hubd: kept the old certificate: " + err);
  }
});
const TYPES = {
  "index.html": "text/html; charset=utf-8",
  "__CRT__": "application/x-x509-ca-cert",
  "__MOBILECONFIG__": "application/x-apple-aspen-config",
};
http.createServer(function (req, res) {
  // Any path gets the page (it sends a trusting device on to the same path over HTTPS);
  // the root's two downloads get themselves.
  const name = (req.url || "/").split("?")[0].replace(/^\/+/, "");
  const file = Object.prototype.hasOwnProperty.call(TYPES, name) ? name : "index.html";
  fs.readFile("__PAGE__/" + file, function (err, body) {
    if (err) {
      res.writeHead(503, { "Content-Type": "text/plain; charset=utf-8", "Retry-After": "2" });
      res.end("The hub is starting; reload in a moment.\n");
      return;
    }
    res.writeHead(200, {
      "Content-Type": TYPES[file],
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    });
    res.end(body);
  });
}).listen(__PAGE_PORT__, "0.0.0.0");
// CHP reads its options from process.argv: drop the path of its program, then run it.
const program = process.argv.splice(2, 1)[0];
global.hubdChpProgram = program;  // where CHP's modules are (hubd/stack/proxy_routes.py)
require(program);
"""


def wrapper_js(crt_name: str, mobileconfig_name: str) -> str:
    return (
        WRAPPER_JS.replace("__KEY__", KEY_IN_PROXY)
        .replace("__CERT__", CERT_IN_PROXY)
        .replace("__PAGE__", PAGE_DIR_IN_PROXY)
        .replace("__PAGE_PORT__", str(PAGE_PORT_IN_PROXY))
        .replace("__CRT__", crt_name)
        .replace("__MOBILECONFIG__", mobileconfig_name)
    )


def entrypoint(token_path: str) -> list[str]:
    """The token from its file into CHP's environment, then node with the wrapper and CHP's
    program (the arguments after "sh" are CHP's)."""
    return [
        "/bin/sh",
        "-c",
        f'CONFIGPROXY_AUTH_TOKEN="$(cat {token_path})" && export CONFIGPROXY_AUTH_TOKEN'
        f" && exec node {WRAPPER_IN_PROXY}"
        ' "$(readlink -f "$(command -v configurable-http-proxy)")" "$@"',
        "sh",
    ]


def chp_arguments() -> list[str]:
    return [f"--ssl-key={KEY_IN_PROXY}", f"--ssl-cert={CERT_IN_PROXY}"]
