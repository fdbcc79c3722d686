"""A scripted browser for the interop SPs (pysaml2_sp.py, onelogin_sp.py): a requests.Session
with its cookie jar follows Latchkey's redirects from an SP's AuthnRequest to the auto-POST
page, filling in what the IdP asks for on the way:

  /login       the password form (with its CSRF token and the parked request's key)
  /login/mfa   the second step: a TOTP code from pyotp (the next 30-second step when the
               current one was already used, which the IdP's one step of skew accepts)
  /mfa/totp    enrolment: the secret read off the page, a pyotp code, then the recovery
               codes page, whose "continue" link goes on to the parked sign-in

Test-only, never a product dependency; pyotp computes every code (software nobody on this
project wrote).
"""

import html
import re
import sys
import time
from urllib.parse import urljoin, urlparse

import pyotp


def field(page, name):
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), page)
    return html.unescape(m.group(1)) if m else None


class Person:
    """Who signs in: the password, and the TOTP secret once enrolled (kept across browsers)."""

    def __init__(self, username, password, totp_secret=None):
        self.username = username
        self.password = password
        self.totp_secret = totp_secret
        self.last_step = None
        self.recovery_codes = []
        self.pages = []  # the IdP pages seen, by path, in order

    def code(self):
        """The next code this person has not used: the current step's, else the next one's
        (waiting, if need be, until that step is within the IdP's one step of skew)."""
        step = int(time.time()) // 30
        if self.last_step is not None and step <= self.last_step:
            step = self.last_step + 1
        while step > int(time.time()) // 30 + 1:
            time.sleep(0.5)
        self.last_step = step
        return pyotp.TOTP(self.totp_secret).at(step * 30)


def _form_fields(page, names):
    data = {"csrf": field(page, "csrf")}
    for name in names:
        value = field(page, name)
        if value is not None:
            data[name] = value
    return data


def browse_to_acs(base, browser, url, person):
    """Follows the IdP until it answers the auto-POST page (200), and returns it."""
    for _ in range(20):
        r = browser.get(url, allow_redirects=False, timeout=10)
        path = urlparse(url).path
        if r.status_code == 303:
            url = urljoin(url, r.headers["Location"])
            continue
        if r.status_code != 200:
            sys.exit("IdP answered %s at %s: %s" % (r.status_code, url, r.text[:500]))
        if path in ("/login", "/login/mfa", "/mfa/totp"):
            person.pages.append(path)
        if path == "/login":
            data = _form_fields(r.text, ["continue"])
            data.update({"username": person.username, "password": person.password})
            r = browser.post(base + "/login", data=data, allow_redirects=False, timeout=10)
            if r.status_code != 303:
                sys.exit("login failed: %s %s" % (r.status_code, r.text[:300]))
            url = urljoin(url, r.headers["Location"])
            continue
        if path == "/login/mfa":
            if not person.totp_secret:
                sys.exit("the IdP asks for a code and no TOTP app is enrolled: %s" % r.text[:500])
            data = _form_fields(r.text, ["continue", "then"])
            data.update({"method": "totp", "code": person.code()})
            r = browser.post(base + "/login/mfa", data=data, allow_redirects=False, timeout=10)
            if r.status_code != 303:
                sys.exit("second step refused: %s %s" % (r.status_code, r.text[:500]))
            url = urljoin(url, r.headers["Location"])
            continue
        if path == "/mfa/totp":
            m = re.search(r'id="totp-secret" class="secret">([^<]*)</code>', r.text)
            if not m:
                sys.exit("no TOTP secret on the enrolment page: %s" % r.text[:500])
            person.totp_secret = m.group(1).replace(" ", "")
            data = _form_fields(r.text, ["continue", "then", "factor"])
            data["code"] = person.code()
            r = browser.post(base + "/mfa/totp", data=data, allow_redirects=False, timeout=10)
            if r.status_code != 200:
                sys.exit("enrolment refused: %s %s" % (r.status_code, r.text[:500]))
            person.recovery_codes = re.findall(r"<li><code>([^<]*)</code></li>", r.text)
            m = re.search(r'id="continue" href="([^"]*)"', r.text)
            if not m:
                sys.exit("no continue link after enrolment: %s" % r.text[:500])
            url = urljoin(url, html.unescape(m.group(1)))
            continue
        return r
    sys.exit("redirect loop")
