"""trw-platform: a self-hostable server for the TRW platform API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trw-platform")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
