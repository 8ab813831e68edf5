"""The leaf: when it still fits, when a new one is made, and how it is kept on disk."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path

import pytest
from cryptography import x509

from hubd.paths import resolve_paths
from hubd.timing import Timing
from hubd.tls import ca, leaf, store

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
RENEW = datetime.timedelta(days=Timing().tls_leaf_renew_before_days)


@pytest.fixture(scope="module")
def root() -> store.Root:
    cert, key = ca.make_root("jupyter", "box", NOW, Timing().tls_root_valid_days)
    return store.Root(cert, key)


def _issue(
    root: store.Root, names: leaf.LeafNames, now: datetime.datetime = NOW
) -> x509.Certificate:
    return leaf.issue(root.cert, root.key, names, now, Timing().tls_leaf_valid_days)[0]


def test_wanted_names_keep_only_permitted_addresses() -> None:
    names = leaf.wanted_names(
        ["Jupyter.local."], ["192.168.1.5", "2001:db8::5", "fe80::1%eth0", "127.0.0.1"]
    )
    assert names.dns == ("jupyter.local",)
    assert [str(a) for a in names.ips] == ["192.168.1.5", "fe80::1"]


def test_a_fresh_leaf_fits_and_lasts_at_most_397_days(root: store.Root) -> None:
    names = leaf.wanted_names(["jupyter.local"], ["192.168.1.5"])
    cert = _issue(root, names)
    assert leaf.misfit(cert, root.cert, names, NOW, RENEW) is None
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= datetime.timedelta(days=397)
    assert leaf.names_of(cert) == names


def test_what_makes_a_leaf_misfit(root: store.Root) -> None:
    names = leaf.wanted_names(["jupyter.local"], ["192.168.1.5"])
    cert = _issue(root, names)
    assert leaf.misfit(None, root.cert, names, NOW, RENEW) == "there is none yet"
    moved = leaf.wanted_names(["jupyter.local"], ["192.168.1.6"])
    assert "addresses changed" in (leaf.misfit(cert, root.cert, moved, NOW, RENEW) or "")
    renamed = leaf.wanted_names(["jupyter-2.local"], ["192.168.1.5"])
    assert "names" in (leaf.misfit(cert, root.cert, renamed, NOW, RENEW) or "")
    # Renewed a month before its end, not on its last day.
    end = cert.not_valid_after_utc
    assert leaf.misfit(cert, root.cert, names, end - RENEW - DAY, RENEW) is None
    assert "expires" in (leaf.misfit(cert, root.cert, names, end - RENEW + DAY, RENEW) or "")
    assert "not valid yet" in (leaf.misfit(cert, root.cert, names, NOW - 2 * DAY, RENEW) or "")
    other_cert, other_key = ca.make_root("jupyter", "box", NOW, 3650)
    foreign = leaf.issue(other_cert, other_key, names, NOW, 397)[0]
    assert "another root" in (leaf.misfit(foreign, root.cert, names, NOW, RENEW) or "")


def test_the_store_makes_keys_0600_in_the_state_folder() -> None:
    files = store.files_in(resolve_paths().state_dir)
    timing = Timing()
    root = store.ensure_root(files, "jupyter", timing, NOW)
    assert stat.S_IMODE(files.root_key.stat().st_mode) == 0o600
    assert store.ensure_leaf(files, root, ["jupyter.local"], ["10.0.0.2"], timing, NOW)
    assert stat.S_IMODE(files.leaf_key.stat().st_mode) == 0o600
    assert str(files.folder).startswith(str(Path(resolve_paths().state_dir)))
    # Nothing changes: the same root, no new leaf.
    again = store.ensure_root(files, "jupyter", timing, NOW + DAY)
    assert again.fingerprint == root.fingerprint
    before = files.leaf_cert.read_bytes()
    assert (
        store.ensure_leaf(files, again, ["jupyter.local"], ["10.0.0.2"], timing, NOW + DAY) is None
    )
    assert files.leaf_cert.read_bytes() == before
    # A new address: a new leaf from the same root.
    assert store.ensure_leaf(files, again, ["jupyter.local"], ["10.0.0.3"], timing, NOW + DAY)
    assert files.leaf_cert.read_bytes() != before


def test_a_rename_beyond_the_roots_names_makes_a_new_root() -> None:
    files = store.files_in(resolve_paths().state_dir)
    timing = Timing()
    root = store.ensure_root(files, "jupyter", timing, NOW)
    store.ensure_leaf(files, root, ["jupyter.local"], [], timing, NOW)
    lab = store.ensure_root(files, "lab", timing, NOW)
    assert lab.fingerprint != root.fingerprint
    assert ca.permits(lab.cert, "lab.local") and not files.leaf_cert.exists()
