"""HTTPS on the LAN from a CA of hubd's own that can vouch for this hub only (docs/https.md).

- `ca`: the root: made once, with critical name constraints that permit only this hub's
  `.local` names and the private and link-local address ranges;
- `leaf`: the server certificate for the hub's current names and addresses, and the pure
  "does this leaf still fit?" decision;
- `store`: both on disk in hubd's state folder (keys 0600), made or renewed when needed;
- `trustpage`: what a device that does not trust the root yet is shown, per platform, and the
  root as `.crt` and `.mobileconfig`.
"""
