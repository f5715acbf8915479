"""Read typed settings from environment variables.

Every reader fails with ``ImproperlyConfigured`` naming the variable, so a
bad deployment stops at start-up instead of misbehaving later.
"""

import os
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def get_str(name, default=None):
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise ImproperlyConfigured(f"Set the environment variable {name}.")
        return default
    return value


def get_bool(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean; use one of 1/0, true/false, yes/no, "
        "on/off."
    )


def get_int(name, default):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None


def get_fraction(name, default):
    """Read a number from 0 to 1, or None (off) when unset and no default."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    if not 0.0 <= number <= 1.0:
        raise ImproperlyConfigured(f"{name}={value!r} must be between 0 and 1.")
    return number


def get_rate(name, default):
    """Read a request rate such as ``120/min`` (a count, then s/min/hour/day)."""
    value = get_str(name, default)
    if not re.fullmatch(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(
            f"{name}={value!r} must look like 120/min (a count, then s, min, "
            "hour or day)."
        )
    return value


def get_list(name, default=()):
    """Read a comma-separated list, ignoring blanks around items."""
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_database_url(name, url):
    """Turn a ``postgresql://`` URL into a Django ``DATABASES`` entry.

    The host may be a unix-socket folder, given either percent-encoded in the
    netloc or as a ``?host=/path`` query parameter (the form libpq and the
    embedded server use). Other query parameters become connection options.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(
            f"{name} must be a postgresql:// URL, got scheme {parts.scheme!r}."
        )
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ImproperlyConfigured(f"{name} must name a database, e.g. .../finance.")

    options = dict(parse_qsl(parts.query))
    host = options.pop("host", None) or unquote(parts.hostname or "")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"{name} has an invalid port.") from None

    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": database,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(port or ""),
        "OPTIONS": options,
    }


def database_url(config):
    """Turn a Django ``DATABASES`` entry back into a ``postgresql://`` URL."""
    auth = ""
    if config["USER"]:
        auth = quote(config["USER"], safe="")
        if config["PASSWORD"]:
            auth += ":" + quote(config["PASSWORD"], safe="")
        auth += "@"
    query = dict(config.get("OPTIONS") or {})
    host = config["HOST"] or ""
    if host.startswith("/"):
        query["host"] = host
        host = ""
    if config["PORT"]:
        host += f":{config['PORT']}"
    url = f"postgresql://{auth}{host}/{quote(config['NAME'], safe='')}"
    return url + (f"?{urlencode(query)}" if query else "")


def validate_redis_url(name, url):
    """Accept ``redis://``, ``rediss://`` and ``redis+socket://`` URLs."""
    scheme = urlsplit(url).scheme
    if scheme not in {"redis", "rediss", "redis+socket"}:
        raise ImproperlyConfigured(
            f"{name} must be a redis://, rediss:// or redis+socket:// URL, "
            f"got scheme {scheme!r}."
        )
    return url
