"""Registry URIs of the MLflow store, and the lake location each names (no MLflow here)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from ..errors import InvalidValue

FORMS = "catalog:///path/to/lake, catalog:relative/path or catalog+s3://bucket/prefix"


def lake_location(store_uri: str) -> str:
    """The lake a registry URI names: a folder for ``catalog:``, an ``s3://`` URL for ``catalog+s3:``.

    >>> lake_location("catalog:///srv/lake")
    '/srv/lake'
    >>> lake_location("catalog+s3://models/registry")
    's3://models/registry'
    """
    parts = urlsplit(store_uri)
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment:
        raise InvalidValue(f"registry URI {store_uri!r} has a query or fragment: use {FORMS}")
    if scheme == "catalog":
        if parts.netloc not in ("", "localhost"):
            raise InvalidValue(
                f"registry URI {store_uri!r} names the host {parts.netloc!r}: a catalog: URI is a folder on this "
                f"machine (catalog:///abs/path, three slashes); for a bucket use catalog+s3://bucket/prefix"
            )
        path = unquote(parts.path)
        if not path:
            raise InvalidValue(f"registry URI {store_uri!r} names no folder: use {FORMS}")
        return path
    if scheme == "catalog+s3":
        if not parts.netloc:
            raise InvalidValue(f"registry URI {store_uri!r} names no bucket: use catalog+s3://bucket/prefix")
        return f"s3://{parts.netloc}{parts.path}".rstrip("/")
    raise InvalidValue(f"registry URI {store_uri!r} is not a catalog URI: use {FORMS}")
