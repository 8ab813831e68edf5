"""What the control socket's server and client agree on."""

MAX_BODY_BYTES = 64 * 1024
# A client that sends nothing for this long is dropped, so a stuck caller holds no thread.
REQUEST_READ_TIMEOUT_S = 5.0
API = "/v1"
# A backup request is answered when the backup is done: a first one of big volumes is slow.
BACKUP_TIMEOUT_S = 6 * 3600.0
