"""XML Encryption oracle for tests/oracles/xmlenc_interop.rs, independent of our code and of xmlsec1:
lxml for the XML, pyca/cryptography (OpenSSL) for RSA-OAEP and AES.

It exists for what xmlsec1 1.2 cannot do: XML-Enc 1.1 rsa-oaep with SHA-256 and MGF1-SHA-256.

Usage:
  xmlenc_oracle.py decrypt KEY.pem IN.xml            -> the plaintext bytes on stdout
  xmlenc_oracle.py encrypt CERT.pem ELEMENT.xml DATA_ALG KEY_TRANSPORT -> an EncryptedData on stdout
     DATA_ALG: aes128-gcm | aes256-gcm | aes128-cbc | aes256-cbc
     KEY_TRANSPORT: mgf1p (rsa-oaep-mgf1p, SHA-1) | oaep256 (xmlenc11 rsa-oaep, SHA-256, MGF1-SHA-256)

Exits with status 3 if lxml or cryptography cannot be imported, so the Rust test can say so.
"""

import base64
import os
import sys

try:
    from lxml import etree
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError as exc:  # pragma: no cover - reported by the Rust test
    sys.stderr.write(f"lxml/cryptography not importable: {exc}\n")
    sys.exit(3)

XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"xenc": XENC, "xenc11": XENC11, "ds": DS}
DATA = {
    XENC11 + "aes128-gcm": ("gcm", 16),
    XENC11 + "aes256-gcm": ("gcm", 32),
    XENC + "aes128-cbc": ("cbc", 16),
    XENC + "aes256-cbc": ("cbc", 32),
}
HASHES = {
    "": hashes.SHA1,
    "http://www.w3.org/2000/09/xmldsig#sha1": hashes.SHA1,
    "http://www.w3.org/2001/04/xmlenc#sha256": hashes.SHA256,
    XENC11 + "mgf1sha1": hashes.SHA1,
    XENC11 + "mgf1sha256": hashes.SHA256,
}


def oaep_padding(method):
    alg = method.get("Algorithm")
    digest = method.find("ds:DigestMethod", NS)
    digest_uri = digest.get("Algorithm") if digest is not None else ""
    if alg == XENC + "rsa-oaep-mgf1p":
        mgf_uri = ""
    elif alg == XENC11 + "rsa-oaep":
        mgf = method.find("xenc11:MGF", NS)
        mgf_uri = mgf.get("Algorithm") if mgf is not None else ""
    else:
        raise SystemExit(f"unsupported key transport {alg}")
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=HASHES[mgf_uri]()), algorithm=HASHES[digest_uri](), label=None
    )


def decrypt(key_path, in_path):
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    doc = etree.parse(in_path)
    root = doc.getroot()
    data = root if root.tag == f"{{{XENC}}}EncryptedData" else root.find(".//xenc:EncryptedData", NS)
    ek = data.find("ds:KeyInfo/xenc:EncryptedKey", NS)
    if ek is None:
        ek = root.find(".//xenc:EncryptedKey", NS)
    wrapped = base64.b64decode(ek.findtext("xenc:CipherData/xenc:CipherValue", namespaces=NS))
    content_key = key.decrypt(wrapped, oaep_padding(ek.find("xenc:EncryptionMethod", NS)))
    mode, key_len = DATA[data.find("xenc:EncryptionMethod", NS).get("Algorithm")]
    assert len(content_key) == key_len, "content key length"
    blob = base64.b64decode(data.findtext("xenc:CipherData/xenc:CipherValue", namespaces=NS))
    if mode == "gcm":
        plain = AESGCM(content_key).decrypt(blob[:12], blob[12:], None)
    else:
        dec = Cipher(algorithms.AES(content_key), modes.CBC(blob[:16])).decryptor()
        padded = dec.update(blob[16:]) + dec.finalize()
        plain = padded[: -padded[-1]]
    sys.stdout.buffer.write(plain)


def encrypt(cert_path, element_path, data_alg, transport):
    with open(cert_path, "rb") as f:
        public = x509.load_pem_x509_certificate(f.read()).public_key()
    with open(element_path, "rb") as f:
        plain = f.read()
    data_uri = (XENC11 if "gcm" in data_alg else XENC) + data_alg
    mode, key_len = DATA[data_uri]
    content_key = os.urandom(key_len)
    if mode == "gcm":
        iv = os.urandom(12)
        blob = iv + AESGCM(content_key).encrypt(iv, plain, None)
    else:
        iv = os.urandom(16)
        pad = 16 - len(plain) % 16
        # Random pad bytes, as xmlsec writes them: only the last byte is the length.
        padded = plain + os.urandom(pad - 1) + bytes([pad])
        enc = Cipher(algorithms.AES(content_key), modes.CBC(iv)).encryptor()
        blob = iv + enc.update(padded) + enc.finalize()
    if transport == "mgf1p":
        method = (
            f'<xenc:EncryptionMethod Algorithm="{XENC}rsa-oaep-mgf1p">'
            f'<ds:DigestMethod Algorithm="{DS}sha1"/></xenc:EncryptionMethod>'
        )
        pad_scheme = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    else:
        method = (
            f'<xenc:EncryptionMethod Algorithm="{XENC11}rsa-oaep">'
            f'<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
            f'<xenc11:MGF xmlns:xenc11="{XENC11}" Algorithm="{XENC11}mgf1sha256"/></xenc:EncryptionMethod>'
        )
        pad_scheme = padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        )
    wrapped = public.encrypt(content_key, pad_scheme)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    sys.stdout.write(
        f'<xenc:EncryptedData xmlns:xenc="{XENC}" xmlns:ds="{DS}" Type="{XENC}Element">'
        f'<xenc:EncryptionMethod Algorithm="{data_uri}"/>'
        f"<ds:KeyInfo><xenc:EncryptedKey>{method}"
        f"<xenc:CipherData><xenc:CipherValue>{b64(wrapped)}</xenc:CipherValue></xenc:CipherData>"
        f"</xenc:EncryptedKey></ds:KeyInfo>"
        f"<xenc:CipherData><xenc:CipherValue>{b64(blob)}</xenc:CipherValue></xenc:CipherData>"
        f"</xenc:EncryptedData>"
    )


if __name__ == "__main__":
    if sys.argv[1] == "decrypt":
        decrypt(sys.argv[2], sys.argv[3])
    else:
        encrypt(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
