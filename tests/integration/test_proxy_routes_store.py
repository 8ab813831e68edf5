"""hubd's CHP storage class, run by the node of the proxy image against CHP's own MemoryStore:
two stores sharing one file (the proxy and its standby) each see what the other wrote, keep
their own newer activity, and ride out a file being written in place."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from hubd.stack.proxy_routes import ROUTES_DIR, ROUTES_STORE_JS
from tests.images.build import TestImages

pytestmark = [pytest.mark.integration, pytest.mark.docker]

# Two stores in one node process stand for the proxy and its standby: they share nothing but
# the file. Every check prints a line; the test compares the whole transcript.
SCENARIO_JS = """
"use strict";
const fs = require("fs");
const path = require("path");
const { execSync } = require("child_process");
global.hubdChpProgram = fs.realpathSync(execSync("command -v configurable-http-proxy",
  { shell: "/bin/sh" }).toString().trim());
const Store = require("/t/store.js");
const FILE = "@DIR@/routes.json";
const target = async (store, p) => ((await store.getTarget(p)) || {}).data;

(async () => {
  const proxy = new Store();
  const standby = new Store();
  await proxy.add("/user/ada", { target: "http://ada:8888" });
  console.log("standby sees ada:", (await target(standby, "/user/ada/lab")).target);
  await standby.add("/user/bob", { target: "http://bob:8888" });
  console.log("proxy sees bob:", (await target(proxy, "/user/bob/api/kernels")).target);
  await standby.remove("/user/ada");
  console.log("proxy after ada removed:", JSON.stringify(await target(proxy, "/user/ada")));
  proxy.update("/user/nobody", { last_activity: new Date() });
  console.log("update of an unknown route: no error");
  const late = new Date("2030-01-01T00:00:00Z");
  proxy.update("/user/bob", { last_activity: late });
  await standby.add("/user/cy", { target: "http://cy:8888" });
  const bob = (await proxy.getAll())["/user/bob"];
  console.log("proxy keeps its newer activity:", new Date(bob.last_activity).toISOString());
  fs.writeFileSync(FILE, "{\\"/user/ha");  // a copy being written in place
  console.log("half a file keeps the table:", (await target(proxy, "/user/cy")).target);
  const fresh = new Store();
  console.log("a new store on half a file:", JSON.stringify(await fresh.getAll()));
  fs.writeFileSync(FILE, JSON.stringify({ "/user/dee": { target: "http://dee:8888" } }));
  console.log("then the whole file:", (await target(proxy, "/user/dee")).target,
    JSON.stringify(await target(proxy, "/user/cy")));
})().catch((e) => { console.log("FAILED " + e.stack); process.exit(1); });
""".replace("@DIR@", ROUTES_DIR)

EXPECTED = """\
standby sees ada: http://ada:8888
proxy sees bob: http://bob:8888
proxy after ada removed: undefined
update of an unknown route: no error
proxy keeps its newer activity: 2030-01-01T00:00:00.000Z
half a file keeps the table: http://cy:8888
a new store on half a file: {}
then the whole file: http://dee:8888 undefined
"""


def test_two_stores_on_one_file_share_the_table(
    tmp_path: Path, docker_client: docker.DockerClient, test_images: TestImages
) -> None:
    (tmp_path / "store.js").write_text(ROUTES_STORE_JS)
    (tmp_path / "scenario.js").write_text(SCENARIO_JS)
    tmp_path.chmod(0o755)
    output = docker_client.containers.run(
        test_images.proxy,
        entrypoint=["sh", "-c", f"mkdir -p {ROUTES_DIR} && exec node /t/scenario.js"],
        user="0",
        network_mode="none",
        volumes={str(tmp_path): {"bind": "/t", "mode": "ro"}},
        remove=True,
    )
    assert output.decode() == EXPECTED
