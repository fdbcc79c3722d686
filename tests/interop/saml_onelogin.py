#!/usr/bin/env python3
"""python3-saml (OneLogin) as a second, independent oracle for latchkey-saml.

  response  Checks OUR Response (file) as a strict OneLogin SP would, trusting only the
            IdP certificate given: prints {"valid", "error", "name_id", "name_id_format",
            "session_index", "attributes"}. Exit status 0 even when invalid, so the Rust
            test can assert on the error; non-zero only if the oracle itself fails.

Run with the oracle venv (LATCHKEY_PYTHON).
"""

import argparse
import base64
import json
import sys
import warnings
from urllib.parse import urlparse

warnings.filterwarnings("ignore")

from onelogin.saml2.response import OneLogin_Saml2_Response  # noqa: E402
from onelogin.saml2.settings import OneLogin_Saml2_Settings  # noqa: E402


def cmd_response(a):
    with open(a.idp_cert) as f:
        cert = f.read()
    settings = OneLogin_Saml2_Settings(
        {
            "strict": True,
            "sp": {
                "entityId": a.sp_entity_id,
                "assertionConsumerService": {
                    "url": a.acs,
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
                },
                "NameIDFormat": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            },
            "idp": {
                "entityId": a.idp_entity_id,
                "singleSignOnService": {
                    "url": "https://idp.invalid/sso",
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
                },
                "x509cert": cert,
            },
            "security": {
                "wantAssertionsSigned": a.want_assertions_signed,
                "wantMessagesSigned": a.want_messages_signed,
                "rejectDeprecatedAlgorithm": True,
            },
        },
        sp_validation_only=True,
    )
    with open(a.response, "rb") as f:
        encoded = base64.b64encode(f.read()).decode()
    acs = urlparse(a.acs)
    request_data = {
        "https": "on" if acs.scheme == "https" else "off",
        "http_host": acs.hostname,
        "server_port": acs.port or (443 if acs.scheme == "https" else 80),
        "script_name": acs.path,
        "get_data": {},
        "post_data": {"SAMLResponse": encoded},
    }
    resp = OneLogin_Saml2_Response(settings, encoded)
    valid = resp.is_valid(request_data, a.request_id)
    out = {"valid": bool(valid), "error": resp.get_error()}
    if valid:
        out.update(
            {
                "name_id": resp.get_nameid(),
                "name_id_format": resp.get_nameid_format(),
                "session_index": resp.get_session_index(),
                "attributes": resp.get_attributes(),
            }
        )
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("response")
    r.add_argument("--idp-cert", required=True)
    r.add_argument("--idp-entity-id", required=True)
    r.add_argument("--sp-entity-id", required=True)
    r.add_argument("--acs", required=True)
    r.add_argument("--request-id", required=True)
    r.add_argument("--response", required=True)
    r.add_argument("--want-assertions-signed", action="store_true")
    r.add_argument("--want-messages-signed", action="store_true")
    a = p.parse_args()
    json.dump({"response": cmd_response}[a.cmd](a), sys.stdout)


if __name__ == "__main__":
    main()
