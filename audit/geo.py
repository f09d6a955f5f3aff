"""Where a sign-in came from: this machine, a private network, or a country (a city with MaxMind).

Offline only, nothing is fetched at run time:

- when the `GEOIP_PATH` setting names a MaxMind GeoIP2 / GeoLite2 database (.mmdb, City or
  Country), it is read with `maxminddb`;
- otherwise the country comes from `iptocc`, which ships the Regional Internet Registries'
  allocation data inside its wheel (refreshed with each release), and its name from `iso3166`.
"""

from __future__ import annotations

import functools
import ipaddress
import logging

from django.conf import settings

logger = logging.getLogger(__name__)

THIS_MACHINE = "This machine"
PRIVATE_NETWORK = "Private network"
UNKNOWN = "Unknown"

# ISO 3166 names that are too long for a table cell.
_SHORT_NAMES = {
    "BO": "Bolivia",
    "BQ": "Caribbean Netherlands",
    "CD": "DR Congo",
    "FM": "Micronesia",
    "GB": "United Kingdom",
    "IR": "Iran",
    "KP": "North Korea",
    "KR": "South Korea",
    "LA": "Laos",
    "MD": "Moldova",
    "PS": "Palestine",
    "RU": "Russia",
    "SY": "Syria",
    "TW": "Taiwan",
    "TZ": "Tanzania",
    "US": "United States",
    "VE": "Venezuela",
    "VN": "Vietnam",
}


def locate(ip: str | None) -> str:
    """Return a short, human place for an address ("Germany", "Berlin, Germany", "Unknown")."""
    if not ip:
        return UNKNOWN
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback or address.is_unspecified:
        return THIS_MACHINE
    if address.is_private or address.is_link_local or address.is_reserved:
        return PRIVATE_NETWORK
    path = getattr(settings, "GEOIP_PATH", "")
    if path:
        place = _from_maxmind(path, str(address))
        if place:
            return place
        return UNKNOWN
    return country_name(_country_code(str(address))) or UNKNOWN


def country_name(code: str | None) -> str:
    """Return the common English name of an ISO 3166-1 alpha-2 code ('' when unknown)."""
    if not code:
        return ""
    code = code.upper()
    if code in _SHORT_NAMES:
        return _SHORT_NAMES[code]
    try:
        import iso3166
    except ImportError:  # pragma: no cover - a declared dependency
        return code
    country = iso3166.countries_by_alpha2.get(code)
    return country.name if country else code


def _country_code(ip: str) -> str | None:
    try:
        from iptocc import country_code
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    try:
        return country_code(ip)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4)
def _maxmind_reader(path: str):
    import maxminddb

    return maxminddb.open_database(path)


def _from_maxmind(path: str, ip: str) -> str:
    try:
        record = _maxmind_reader(path).get(ip)
    except (OSError, ValueError) as exc:
        logger.warning("GeoIP database %s could not be read: %s", path, exc)
        return ""
    if not record:
        return ""
    country = record.get("country") or record.get("registered_country") or {}
    name = (country.get("names") or {}).get("en") or country_name(country.get("iso_code"))
    city = ((record.get("city") or {}).get("names") or {}).get("en")
    return f"{city}, {name}" if city and name else name or ""
