#!/usr/bin/env python3
"""pysaml2 as the IdP for latchkey-sp's interop test (apps/demo/tests/demo/interop.rs).

Given the IdP's key and certificate, OUR SP metadata (as latchkey-sp generates it) and the ID
of the AuthnRequest our SP sent, pysaml2's Server.create_authn_response builds a signed
Response. Prints {"xml": "..."} on stdout.

Attributes are sent with the basic name format under the names the demo helpdesk reads
(givenName, sn, department, email), and the NameID is persistent.

Run with the oracle venv (LATCHKEY_PYTHON); xmlsec1 must be on PATH (pysaml2 signs with it).
"""

import argparse
import json
import shutil
import sys
import warnings

warnings.filterwarnings("ignore")

try:
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2.config import IdPConfig
    from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_PERSISTENT, NameID
    from saml2.server import Server
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256
except ModuleNotFoundError as e:  # the Rust test turns this into a clear failure
    sys.exit(f"ModuleNotFoundError: {e} (pysaml2 is missing: use the oracle venv)")

PASSWORD_PROTECTED_TRANSPORT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--key", required=True, help="IdP private key (PEM)")
    p.add_argument("--cert", required=True, help="IdP certificate (PEM)")
    p.add_argument("--idp-entity-id", required=True)
    p.add_argument("--sso", required=True, help="IdP SSO URL (for its own config)")
    p.add_argument("--sp-metadata", required=True, help="our SP metadata file")
    p.add_argument("--sp-entity-id", required=True)
    p.add_argument("--acs", required=True)
    p.add_argument("--request-id", required=True)
    p.add_argument("--name-id", required=True)
    p.add_argument("--department", default="support")
    a = p.parse_args()

    xmlsec = shutil.which("xmlsec1")
    if not xmlsec:
        sys.exit("xmlsec1 not found on PATH (pysaml2 needs it to sign)")
    conf = {
        "entityid": a.idp_entity_id,
        "key_file": a.key,
        "cert_file": a.cert,
        "xmlsec_binary": xmlsec,
        "service": {
            "idp": {
                "endpoints": {"single_sign_on_service": [(a.sso, BINDING_HTTP_REDIRECT)]},
                "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_BASIC}},
                "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            }
        },
        "metadata": {"local": [a.sp_metadata]},
    }
    idp = Server(config=IdPConfig().load(conf))
    resp = idp.create_authn_response(
        identity={
            "givenName": ["Ada"],
            "sn": ["Lovelace"],
            "department": [a.department],
            "email": ["ada@example.org"],
        },
        in_response_to=a.request_id,
        destination=a.acs,
        sp_entity_id=a.sp_entity_id,
        name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, sp_name_qualifier=a.sp_entity_id, text=a.name_id),
        authn={"class_ref": PASSWORD_PROTECTED_TRANSPORT},
        sign_response=False,
        sign_assertion=True,
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    print(json.dumps({"xml": str(resp)}))


if __name__ == "__main__":
    main()
