"""The daemon's HTTP server (aiohttp) and process management. Public surface: create_app, start_server,
serve_forever; security helpers; process start/stop/status."""

from ghostline.daemon.paths import token_path
from ghostline.daemon.server.app import create_app, serve_forever, start_server
from ghostline.daemon.server.security import is_loopback_host, load_or_create_token

__all__ = ["create_app", "is_loopback_host", "load_or_create_token", "serve_forever", "start_server", "token_path"]
