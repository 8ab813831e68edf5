"""What the control socket's server and client agree on."""

MAX_BODY_BYTES = 64 * 1024
API = "/v1"
