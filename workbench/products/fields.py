"""Checks and normal forms of a product's fields: SKU, price, ISO 4217 currency, product URL, Lab colour.

Each check returns the clean value or raises ``ProductError`` naming the field, the value and what to write instead.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit


class ProductError(ValueError):
    """A product that does not exist, or a field value that cannot be stored; the message names the field/SKU."""


# ISO 4217 active codes (2024 list, funds and precious metals left out: a shop does not price in them).
ISO_4217 = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP
CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF
IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK
MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS
VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
""".split())  # noqa: SIM905 - readable as a block

SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#+-]{0,99}\Z")
MAX_PRICE = Decimal("1e10")


def check_sku(sku: Any) -> str:
    text = "" if sku is None else str(sku).strip()
    if not SKU.match(text):
        raise ProductError(f"sku {text!r}: use 1-100 characters, letters, digits and . _ : / # + - (starting with a "
                           "letter or digit)")
    return text


def check_price(price: Any) -> Decimal | None:
    """A non-negative amount with at most 4 decimals, or None (no price). Accepts Decimal, int, str ("49.90")."""
    if price is None or (isinstance(price, str) and not price.strip()):
        return None
    if isinstance(price, float):
        if not math.isfinite(price):
            raise ProductError(f"price {price!r}: not a number")
        price = repr(price)  # the shortest text that round-trips, not the binary expansion
    try:
        value = Decimal(str(price).strip().replace(",", "") if isinstance(price, str) else price)
    except (InvalidOperation, TypeError, ValueError):
        raise ProductError(f"price {price!r}: write an amount such as 49.90 (no currency sign)") from None
    if not value.is_finite() or value < 0 or value >= MAX_PRICE:
        raise ProductError(f"price {price!r}: must be a finite amount from 0 to {MAX_PRICE:,.0f}")
    if value.as_tuple().exponent < -4 and value != value.quantize(Decimal("0.0001")):
        raise ProductError(f"price {price!r}: at most 4 decimals")
    return value


def check_currency(currency: Any) -> str:
    """An ISO 4217 code ("EUR"), upper-cased; "" for none."""
    text = "" if currency is None else str(currency).strip().upper()
    if text and text not in ISO_4217:
        raise ProductError(f"currency {currency!r}: not an ISO 4217 code (e.g. EUR, USD, GBP, JPY, KRW)")
    return text


def check_url(url: Any) -> str:
    """An absolute http(s) URL with a host; "" for none. Anything else (javascript:, data:, file:) is refused."""
    text = "" if url is None else str(url).strip()
    if not text:
        return ""
    if len(text) > 2000 or any(c.isspace() or ord(c) < 32 for c in text):
        raise ProductError(f"url {text[:80]!r}: at most 2,000 characters, without spaces or control characters")
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ProductError(f"url {text[:80]!r}: give an http:// or https:// address with a host "
                           "(e.g. https://shop.example/p/AUR-1001)")
    return text


def check_lab(lab: Any) -> tuple[float, float, float] | None:
    """(L, a, b) with L in 0..100 and a, b in -200..200, or None."""
    if lab is None:
        return None
    try:
        values = tuple(float(v) for v in lab)
    except (TypeError, ValueError):
        raise ProductError(f"colour_lab {lab!r}: give three numbers (L, a, b)") from None
    if len(values) != 3 or not all(math.isfinite(v) for v in values) or not 0 <= values[0] <= 100 \
            or not all(-200 <= v <= 200 for v in values[1:]):
        raise ProductError(f"colour_lab {lab!r}: give (L, a, b) with L in 0..100 and a, b in -200..200")
    return values  # type: ignore[return-value]


def lab_to_hex(lab: tuple[float, float, float]) -> str:
    """CIE Lab (D65) as an sRGB "#rrggbb" swatch, clipped into the gamut."""
    L, a, b = lab
    fy = (L + 16) / 116
    fx, fz = fy + a / 500, fy - b / 200

    def finv(t: float) -> float:
        return t ** 3 if t ** 3 > 0.008856 else (t - 16 / 116) / 7.787

    x, y, z = 0.95047 * finv(fx), 1.0 * finv(fy), 1.08883 * finv(fz)
    rgb = (3.2406 * x - 1.5372 * y - 0.4986 * z, -0.9689 * x + 1.8758 * y + 0.0415 * z,
           0.0557 * x - 0.2040 * y + 1.0570 * z)

    def gamma(c: float) -> int:
        c = min(1.0, max(0.0, c))
        c = 12.92 * c if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055
        return round(255 * c)

    return "#" + "".join(f"{gamma(c):02x}" for c in rgb)


def slug(text: str, limit: int = 60) -> str:
    """"Navy Wool Coat (M)" -> "navy-wool-coat-m": a SKU derived from a folder name."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out[:limit].strip("-")
