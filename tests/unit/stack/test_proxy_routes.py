"""The proxy's kept routing table: what hubd puts into a new proxy container."""

from __future__ import annotations

import io
import tarfile

from hubd.stack import proxy_tls
from hubd.stack.containers import tar_of
from hubd.stack.proxy_routes import ROUTES_FILE, ROUTES_STORE_JS, routes_entries, valid_table


def test_the_table_folder_belongs_to_the_proxy_user_and_holds_the_table() -> None:
    data = tar_of(routes_entries('{"/user/ada": {"target": "http://x:8888"}}', owner=65534))
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = {m.name: m for m in archive.getmembers()}
        ours = {"var/lib/hubd-proxy", ROUTES_FILE.lstrip("/")}
        # The folders above it are root's, as the image has them.
        assert set(members) == ours | {"var", "var/lib"}
        assert all(members[name].uid == 65534 for name in ours)
        assert members["var/lib"].uid == 0 and members["var/lib"].mode == 0o755
        assert members["var/lib/hubd-proxy"].mode == 0o700
        assert members[ROUTES_FILE.lstrip("/")].mode == 0o600
        table = archive.extractfile(members[ROUTES_FILE.lstrip("/")])
        assert table is not None and b"/user/ada" in table.read()
    # Without a table: the folder only (a first proxy, or one whose table was unreadable).
    with tarfile.open(fileobj=io.BytesIO(tar_of(routes_entries(None, owner=65534)))) as archive:
        assert [m.name for m in archive.getmembers()] == ["var", "var/lib", "var/lib/hubd-proxy"]


def test_only_a_json_object_is_a_table() -> None:
    assert valid_table('{"/": {"target": "http://hub:8081"}}') is not None
    for bad in (None, "", "[]", "{half", '"text"'):
        assert valid_table(bad) is None


def test_the_store_writes_where_hubd_reads() -> None:
    assert f'const FILE = "{ROUTES_FILE}";' in ROUTES_STORE_JS
    # CHP's own store module, found from CHP's program, also under the HTTPS wrapper.
    assert "global.hubdChpProgram || require.main.filename" in ROUTES_STORE_JS
    assert "global.hubdChpProgram = program;" in proxy_tls.WRAPPER_JS
