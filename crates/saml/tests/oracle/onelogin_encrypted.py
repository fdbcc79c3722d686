"""python3-saml (OneLogin, strict) as the SP-side oracle for our encrypted assertions.

Usage: onelogin_encrypted.py RESPONSE.xml IDP_CERT.pem SP_CERT.pem SP_KEY.pem SP_ENTITY ACS IDP_ENTITY REQUEST_ID [noschema]
"noschema" runs python3-saml non-strict, which skips its XSD validation (and the profile rules,
but still decrypts and checks signatures): its bundled xenc 1.0 schema has no declaration for
xenc11:MGF, which XML-Enc 1.1 rsa-oaep with SHA-256 needs, and strict mode always validates.
Prints JSON {"valid", "error", "name_id"}. python3-saml decrypts the EncryptedAssertion with
libxmlsec1 (through the `xmlsec` binding), then checks the decrypted assertion's signature and
every profile rule against the real clock. Exit status 3 if python3-saml cannot be imported.
"""

import base64
import json
import sys
import warnings
from urllib.parse import urlparse

warnings.filterwarnings("ignore")

try:
    from onelogin.saml2.response import OneLogin_Saml2_Response
    from onelogin.saml2.settings import OneLogin_Saml2_Settings
except ImportError as exc:  # pragma: no cover - reported by the Rust test
    sys.stderr.write(f"python3-saml is not importable: {exc}\n")
    sys.exit(3)


def main(response, idp_cert, sp_cert, sp_key, sp_entity, acs, idp_entity, request_id, schema=""):
    read = lambda p: open(p).read()  # noqa: E731
    settings = OneLogin_Saml2_Settings(
        {
            "strict": schema != "noschema",
            "sp": {
                "entityId": sp_entity,
                "assertionConsumerService": {
                    "url": acs,
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
                },
                "x509cert": read(sp_cert),
                "privateKey": read(sp_key),
            },
            "idp": {
                "entityId": idp_entity,
                "singleSignOnService": {
                    "url": "https://idp.invalid/sso",
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
                },
                "x509cert": read(idp_cert),
            },
            "security": {
                "wantAssertionsSigned": True,
                "wantAssertionsEncrypted": True,
                "rejectDeprecatedAlgorithm": True,
            },
        },
        sp_validation_only=True,
    )
    with open(response, "rb") as f:
        encoded = base64.b64encode(f.read()).decode()
    u = urlparse(acs)
    request_data = {
        "https": "on" if u.scheme == "https" else "off",
        "http_host": u.hostname,
        "server_port": u.port or (443 if u.scheme == "https" else 80),
        "script_name": u.path,
        "get_data": {},
        "post_data": {"SAMLResponse": encoded},
    }
    try:
        resp = OneLogin_Saml2_Response(settings, encoded)
    except Exception as exc:  # python3-saml decrypts in the constructor and raises on failure
        json.dump({"valid": False, "error": f"{type(exc).__name__}: {exc}"}, sys.stdout)
        return
    valid = resp.is_valid(request_data, request_id)
    out = {"valid": bool(valid), "error": resp.get_error()}
    if valid:
        out["name_id"] = resp.get_nameid()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:10])
