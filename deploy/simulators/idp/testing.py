"""Log in through the identity-provider simulator without a browser, for tests of a relying party (the portal).

    result = await log_in(portal_client, "http://127.0.0.1:8010", "198707049931", acr="loa3")
    assert result.response.status_code == 303  # whatever the portal answers its callback

The portal's client follows the portal's `/login` redirect to the simulator's BankID (test) page, posts the form
as a person would (a chosen personnummer and assurance level, or Avbryt), and brings the redirect back to the
portal's callback. The portal's cookies stay in the client, so it is logged in afterwards. Every step that does not
go as a login should raises `IdpLoginError` saying which step and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

LOA_PREFIX = "http://id.elegnamnden.se/loa/1.0/"
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class IdpLoginError(Exception):
    """A step of the login did not go as a login should."""


@dataclass(frozen=True)
class LoginResult:
    """The URLs of the way through the identity provider, and the portal's answer to its callback."""

    authorize_url: str
    callback_url: str
    response: httpx.Response

    @property
    def callback_params(self) -> dict[str, str]:
        """The query of the callback: code and state, or error and state."""
        return {k: v[0] for k, v in parse_qs(urlsplit(self.callback_url).query).items()}


async def log_in(
    portal: httpx.AsyncClient,
    idp_base_url: str,
    personnummer: str,
    acr: str = "loa3",
    *,
    login_path: str = "/login",
    action: Literal["legitimera", "avbryt"] = "legitimera",
) -> LoginResult:
    """Follow the portal's login redirect through the BankID (test) page and back to the portal's callback.

    `personnummer` is any valid one (a listed test person or not); `acr` is loa2, loa3 or loa4 (or the full
    `http://id.elegnamnden.se/loa/1.0/...` value). With `action="avbryt"` the person cancels, and the portal's
    callback gets `error=access_denied`. Returns after the portal has answered the callback, without following
    the portal's own redirect.
    """
    idp = idp_base_url.rstrip("/")
    start = await portal.get(login_path, follow_redirects=False)
    authorize_url = _redirect_target(start, f"the portal's {login_path}")
    if not authorize_url.startswith(f"{idp}/"):
        raise IdpLoginError(f"the portal's {login_path} redirected to {authorize_url}, not to the provider {idp}")

    page = await portal.get(authorize_url, follow_redirects=False)
    if page.status_code in REDIRECTS:
        raise IdpLoginError(f"the identity provider refused the authorization request: {page.headers['location']}")
    if page.status_code != 200:
        raise IdpLoginError(f"the identity provider answered {page.status_code}: {_page_text(page)}")
    form = _LoginForm.parse(page.text)
    if form.txn is None:
        raise IdpLoginError("the identity provider's page has no BankID (test) form")

    fields = {"txn": form.txn, "personnummer": personnummer, "acr": acr.removeprefix(LOA_PREFIX), "action": action}
    answer = await portal.post(urljoin(authorize_url, form.action), data=fields, follow_redirects=False)
    if answer.status_code not in REDIRECTS:
        errors = _LoginForm.parse(answer.text).errors
        detail = "; ".join(errors) if errors else _page_text(answer)
        raise IdpLoginError(f"the BankID (test) page refused the login ({answer.status_code}): {detail}")
    callback_url = _redirect_target(answer, "the identity provider")

    response = await portal.get(callback_url, follow_redirects=False)
    return LoginResult(authorize_url=authorize_url, callback_url=callback_url, response=response)


def _redirect_target(response: httpx.Response, who: str) -> str:
    if response.status_code not in REDIRECTS or "location" not in response.headers:
        raise IdpLoginError(f"{who} answered {response.status_code} where a redirect was expected")
    return urljoin(str(response.url), response.headers["location"])


def _page_text(response: httpx.Response) -> str:
    text = " ".join(_LoginForm.parse(response.text).text.split())
    return text[:300] or response.reason_phrase


class _LoginForm(HTMLParser):
    """The parts of the BankID (test) page a test needs: the form's action, its txn, the error messages."""

    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})

    def __init__(self) -> None:
        super().__init__()
        self.action = "/authorize"
        self.txn: str | None = None
        self.errors: list[str] = []
        self.text = ""
        self._error_depth = 0
        self._in_main = False

    @classmethod
    def parse(cls, html: str) -> _LoginForm:
        parser = cls()
        parser.feed(html)
        parser.close()
        return parser

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "main":
            self._in_main = True
        if tag == "form" and attributes.get("action"):
            self.action = attributes["action"] or self.action
        if tag == "input" and attributes.get("name") == "txn":
            self.txn = attributes.get("value")
        if tag in self.VOID:
            return
        if self._error_depth:
            self._error_depth += 1
        elif "error" in (attributes.get("class") or "").split():
            self._error_depth = 1
            self.errors.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "main":
            self._in_main = False
        if self._error_depth and tag not in self.VOID:
            self._error_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._in_main:
            self.text += data
        if self._error_depth:
            self.errors[-1] = " ".join(f"{self.errors[-1]} {data}".split())
