#!/usr/bin/env python3
"""python3-saml (OneLogin) as a real SP against a running `latchkey serve`
(crates/cli/tests/oracles/serve.rs), requesting REFEDS MFA.

The SP reads the IdP's metadata over HTTP and makes an unsigned HTTP-Redirect AuthnRequest
with RequestedAuthnContext `https://refeds.org/profile/mfa` (exact); a scripted browser
(idp_browser.py) signs in: the password, then the second step with a pyotp code for the
TOTP secret given (or enrolment on the way, when none is given: alice has no factor yet). python3-saml then checks the Response
in strict mode with failOnAuthnContextMismatch, so an assertion stating anything but the
class it asked for is refused. Prints one JSON object:

  {"request_id", "errors", "reason", "authn_contexts", "name_id", "session_index",
   "idp_pages", "totp_secret", "totp_last_step", "recovery_codes"}

Run with the oracle venv (LATCHKEY_PYTHON).
"""

import argparse
import base64
import json
import re
import sys
import warnings
from urllib.parse import urlparse

warnings.filterwarnings("ignore")

import requests  # noqa: E402
from onelogin.saml2.auth import OneLogin_Saml2_Auth  # noqa: E402
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser  # noqa: E402
from onelogin.saml2.settings import OneLogin_Saml2_Settings  # noqa: E402

from idp_browser import Person, browse_to_acs, field  # noqa: E402  (beside this script)

REFEDS_MFA = "https://refeds.org/profile/mfa"


def settings(a):
    idp = OneLogin_Saml2_IdPMetadataParser.parse_remote(a.base + "/saml/metadata", timeout=10)
    data = OneLogin_Saml2_IdPMetadataParser.merge_settings(
        {
            "strict": True,
            "sp": {
                "entityId": a.sp_entity_id,
                "assertionConsumerService": {
                    "url": a.acs,
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
                },
                "NameIDFormat": "urn:oasis:names:tc:SAML:2.0:nameid-format:unspecified",
            },
            "security": {
                "authnRequestsSigned": False,
                "wantAssertionsSigned": True,
                "wantMessagesSigned": False,
                "requestedAuthnContext": [REFEDS_MFA],
                "requestedAuthnContextComparison": "exact",
                "failOnAuthnContextMismatch": True,
                "rejectDeprecatedAlgorithm": True,
            },
        },
        idp,
    )
    return OneLogin_Saml2_Settings(data)


def request_data(url, post=None):
    u = urlparse(url)
    return {
        "https": "on" if u.scheme == "https" else "off",
        "http_host": u.hostname,
        "server_port": u.port or (443 if u.scheme == "https" else 80),
        "script_name": u.path,
        "get_data": {},
        "post_data": post or {},
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True)
    p.add_argument("--sp-entity-id", required=True)
    p.add_argument("--acs", required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--totp-secret")
    a = p.parse_args()

    conf = settings(a)
    auth = OneLogin_Saml2_Auth(request_data(a.acs), conf)
    location = auth.login(return_to="onelogin-mfa")
    request_id = auth.get_last_request_id()
    person = Person(a.username, a.password, a.totp_secret)
    page = browse_to_acs(a.base, requests.Session(), location, person)
    action = re.search(r'<form method="post" action="([^"]*)"', page.text)
    if not action:
        sys.exit("no auto-POST page: %s" % page.text[:500])
    saml_response = field(page.text, "SAMLResponse")
    auth = OneLogin_Saml2_Auth(
        request_data(a.acs, {"SAMLResponse": saml_response, "RelayState": field(page.text, "RelayState")}),
        conf,
    )
    auth.process_response(request_id=request_id)
    errors = auth.get_errors()
    xml = base64.b64decode(saml_response).decode()
    out = {
        "request_id": request_id,
        "errors": errors,
        "reason": auth.get_last_error_reason(),
        "authn_contexts": auth.get_last_authn_contexts() if not errors else [],
        "name_id": auth.get_nameid() if not errors else None,
        "session_index": auth.get_session_index() if not errors else None,
        "in_response_to": (re.search(r'InResponseTo="([^"]*)"', xml) or [None, None])[1],
        "idp_pages": person.pages,
        "totp_secret": person.totp_secret,
        "totp_last_step": person.last_step,
        "recovery_codes": len(person.recovery_codes),
    }
    json.dump(out, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
