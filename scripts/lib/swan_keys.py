#!/usr/bin/python3
"""Wireshark's decryption tables from a strongSwan charon log written with `ike = 4` and `chd = 4`
(strongswan-router.sh with SWAN_LOG_KEYS=1), for a test that decrypts what it captured: one IKE SA
and its first Child SA per log, strongSwan the initiator.

usage: swan_keys.py CHARON_LOG IKE_SPI_I IKE_SPI_R OUT_DIR
Writes OUT_DIR/ikev2_decryption_table and OUT_DIR/esp_sa (Wireshark UAT lines); the IKE SPIs come
from the capture (IKE_SA_INIT). These files hold keys: they live in the test's own folder only.
"""

import os
import re
import sys

# strongSwan's algorithm names -> (Wireshark IKEv2 name, Wireshark ESP name)
ENCRYPTION = {
    "AES_GCM_16_128": ("AES-GCM-128 with 16 octet ICV [RFC5282]", "AES-GCM with 16 octet ICV [RFC4106]"),
    "AES_GCM_16_256": ("AES-GCM-256 with 16 octet ICV [RFC5282]", "AES-GCM with 16 octet ICV [RFC4106]"),
    "AES_CBC_128": ("AES-CBC-128 [RFC3602]", "AES-CBC [RFC3602]"),
    "AES_CBC_256": ("AES-CBC-256 [RFC3602]", "AES-CBC [RFC3602]"),
}
INTEGRITY = {
    None: ("NONE [RFC4306]", "NULL"),
    "HMAC_SHA1_96": ("HMAC_SHA1_96 [RFC2404]", "HMAC-SHA-1-96 [RFC2404]"),
    "HMAC_SHA2_256_128": ("HMAC_SHA2_256_128 [RFC4868]", "HMAC-SHA-256-128 [RFC4868]"),
}
# A log line: "<date> <thread>[GRP] <conn|n> message".
MESSAGE = re.compile(r"\[\w+\] (?:<[^>]*> )?(.*)$")
HEX_LINE = re.compile(r"^\s*\d+: ((?:[0-9A-F]{2} ){1,16})")


def algorithms(proposal):
    names = proposal.split(":", 1)[1].split("/")
    encryption = next(n for n in names if n in ENCRYPTION)
    integrity = next((n for n in names if n in INTEGRITY), None)
    return encryption, integrity


def parse(path):
    keys, proposals, spis = {}, {}, None
    collecting = None
    for line in open(path, errors="replace"):
        m = MESSAGE.search(line.rstrip("\n"))
        if not m:
            continue
        text = m.group(1)
        h = HEX_LINE.match(text)
        if h and collecting:
            keys[collecting] += bytes.fromhex(h.group(1).replace(" ", ""))
            continue
        collecting = None
        k = re.match(r"(Sk_ei|Sk_er|Sk_ai|Sk_ar) secret =>", text) or re.match(
            r"(encryption|integrity) (initiator|responder) key =>", text
        )
        if k:
            name = k.group(1) if k.group(1).startswith("Sk_") else k.group(1)[0] + k.group(2)[0]
            if name not in keys:
                collecting = name
                keys[name] = b""
            continue
        p = re.match(r"selected proposal: (IKE|ESP):(\S+)", text)
        if p and p.group(1) not in proposals:
            proposals[p.group(1)] = p.group(0).split(" ", 2)[2]
            continue
        s = re.search(r"CHILD_SA \S+ established with SPIs ([0-9a-f]{8})_i ([0-9a-f]{8})_o", text)
        if s and spis is None:
            spis = s.groups()
    return keys, proposals, spis


def main():
    log, spi_i, spi_r, out = sys.argv[1:5]
    keys, proposals, spis = parse(log)
    ike_enc, ike_int = algorithms(proposals["IKE"])
    esp_enc, esp_int = algorithms(proposals["ESP"])
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "ikev2_decryption_table"), "w") as f:
        f.write(
            f'{spi_i},{spi_r},{keys["Sk_ei"].hex()},{keys["Sk_er"].hex()},"{ENCRYPTION[ike_enc][0]}",'
            f'{keys.get("Sk_ai", b"").hex()},{keys.get("Sk_ar", b"").hex()},"{INTEGRITY[ike_int][0]}"\n'
        )
    # strongSwan initiated: it receives on its _i SPI with the responder's keys, sends on _o with its own.
    inbound, outbound = spis
    with open(os.path.join(out, "esp_sa"), "w") as f:
        for spi, src, dst, role in ((inbound, "*", "*", "r"), (outbound, "*", "*", "i")):
            auth = keys.get("i" + role, b"")
            f.write(
                f'"IPv4","{src}","{dst}","0x{spi}","{ENCRYPTION[esp_enc][1]}","0x{keys["e" + role].hex()}",'
                f'"{INTEGRITY[esp_int][1]}","{"0x" + auth.hex() if auth else ""}"\n'
            )
    print(f"keys of IKE SA {spi_i}/{spi_r} ({ike_enc}) and ESP SPIs {inbound}/{outbound} ({esp_enc})")


if __name__ == "__main__":
    main()
