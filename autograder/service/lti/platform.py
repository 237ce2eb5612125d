"""PyLTI1p3 adapted to this service (the library ships Django and Flask adapters only):

* :class:`LtiRequest`: a request whose form or query was read beforehand (Starlette reads the
  body asynchronously; the library asks synchronously);
* :class:`LtiCookies`: cookies the library sets (the OIDC ``state``), put on our response;
* :class:`DatabaseLaunchStorage` and :class:`LtiSessions`: nonces and states kept in the course
  database (``lti_launch_state``), so the login and the launch may be answered by different
  processes; a **nonce is used up by the launch that presents it** (the library only checks that
  it exists), so a replayed ``id_token`` is refused;
* :class:`OidcLogin` and :class:`Launch`: the library's login and launch over these;
* :class:`Connector`: the OAuth2 client (``client_credentials`` with a signed JWT assertion) for
  AGS and NRPS calls, with a timeout on every request and the access token kept per scope set.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

import requests
import sqlalchemy as sa
from pylti1p3.cookie import CookieService
from pylti1p3.launch_data_storage.base import LaunchDataStorage
from pylti1p3.message_launch import MessageLaunch
from pylti1p3.oidc_login import OIDCLogin
from pylti1p3.redirect import Redirect
from pylti1p3.registration import Registration
from pylti1p3.request import Request
from pylti1p3.service_connector import REQUESTS_USER_AGENT, ServiceConnector
from pylti1p3.session import SessionService
from starlette.responses import RedirectResponse, Response

from autograder.service.database import ServiceDB
from autograder.service.lti.config import public_jwk
from autograder.service.lti.models import LtiLaunchState

UTC = dt.timezone.utc
#: How long the OIDC handshake may take between the login and the launch.
HANDSHAKE_S = 300


class LtiRequest(Request):
    """The parameters (query or form) and cookies of one request, read beforehand."""

    def __init__(self, params: Mapping[str, str], cookies: Mapping[str, str],
                 secure: bool) -> None:
        self._params, self._cookies, self._secure = dict(params), dict(cookies), secure

    @property
    def session(self) -> dict:  # the library's session storage is replaced by the database
        raise NotImplementedError("LTI state is kept in the database, not a session")

    def is_secure(self) -> bool:
        return self._secure

    def get_param(self, key: str) -> str:
        return self._params.get(key, "")

    def get_cookie(self, key: str) -> str | None:
        return self._cookies.get(key)


class LtiCookies(CookieService):
    """Cookies the library reads and sets, prefixed ``lti1p3-``. Over HTTPS they are
    ``SameSite=None; Secure`` (the launch is a cross-site POST from the LMS); over plain HTTP
    (127.0.0.1 tests) ``Lax``, which browsers accept without ``Secure``."""

    def __init__(self, request: LtiRequest) -> None:
        self._request = request
        self._to_set: dict[str, tuple[str, int | None]] = {}

    def _key(self, name: str) -> str:
        return f"{self._cookie_prefix}-{name}"

    def get_cookie(self, name: str) -> str | None:
        return self._request.get_cookie(self._key(name))

    def set_cookie(self, name: str, value: str | int, exp: int | None = 3600) -> None:
        self._to_set[self._key(name)] = (str(value), exp)

    def apply(self, response: Response) -> Response:
        secure = self._request.is_secure()
        for key, (value, exp) in self._to_set.items():
            response.set_cookie(key, value, max_age=exp, path="/", httponly=True,
                                secure=secure, samesite="none" if secure else "lax")
        return response


class DatabaseLaunchStorage(LaunchDataStorage[Any]):
    """The library's key-value store in the ``lti_launch_state`` table, with expiry."""

    def __init__(self, db: ServiceDB) -> None:
        super().__init__()
        self.db = db

    def get_session_cookie_name(self) -> None:
        # Keys are random (uuid nonces and states): no per-browser prefix needed, and none
        # would survive the cross-site POST of the launch in browsers that drop its cookies.
        return None

    def can_set_keys_expiration(self) -> bool:
        return True

    def get_value(self, key: str) -> Any:
        now = dt.datetime.now(UTC)
        with self.db.read() as s:
            row = s.get(LtiLaunchState, self._prepare_key(key)[:255])
            if row is None or row.expires_at < now:
                return None
            return row.value.get("v")

    def set_value(self, key: str, value: Any, exp: int | None = None) -> None:
        now = dt.datetime.now(UTC)
        expires = now + dt.timedelta(seconds=exp or HANDSHAKE_S)
        with self.db.write() as s:
            # Forget what expired: the table holds only handshakes in flight.
            s.execute(sa.delete(LtiLaunchState).where(LtiLaunchState.expires_at < now))
            row = s.get(LtiLaunchState, self._prepare_key(key)[:255])
            if row is None:
                s.add(LtiLaunchState(key=self._prepare_key(key)[:255], value={"v": value},
                                     expires_at=expires))
            else:
                row.value, row.expires_at = {"v": value}, expires

    def check_value(self, key: str) -> bool:
        return self.get_value(key) is not None

    def take(self, key: str) -> bool:
        """Use up ``key``: True only for the first caller while it is unexpired."""
        now = dt.datetime.now(UTC)
        with self.db.write() as s:
            gone = s.execute(sa.delete(LtiLaunchState)
                             .where(LtiLaunchState.key == self._prepare_key(key)[:255],
                                    LtiLaunchState.expires_at >= now))
            return bool(getattr(gone, "rowcount", 0))  # a DELETE's CursorResult


class LtiSessions(SessionService):
    """The library's session service over :class:`DatabaseLaunchStorage`."""

    def __init__(self, request: LtiRequest, db: ServiceDB) -> None:
        self.data_storage = DatabaseLaunchStorage(db)
        self.data_storage.set_request(request)
        self._launch_data_lifetime = HANDSHAKE_S

    def check_nonce(self, nonce: str) -> bool:
        # Single use: the library would accept the same nonce again until it expired.
        storage = self.data_storage
        assert isinstance(storage, DatabaseLaunchStorage)
        return storage.take(self._get_key("nonce", nonce))

    def save_launch_data(self, key: str, jwt_body: Any) -> None:
        """Not kept: what a launch leaves (user, context, link) goes to the LTI tables."""


class _Redirect(Redirect[Response]):
    def __init__(self, location: str, cookies: LtiCookies) -> None:
        self._location, self._cookies = location, cookies

    def do_redirect(self) -> Response:
        return self._cookies.apply(RedirectResponse(self._location, status_code=302))

    def do_js_redirect(self) -> Response:
        return self.do_redirect()

    def set_redirect_url(self, location: str) -> None:
        self._location = location

    def get_redirect_url(self) -> str:
        return self._location


def timeout_session(timeout_s: float) -> requests.Session:
    """A requests session whose every call has a timeout (the library sets none: a silent
    LMS would hold a launch or a sender forever)."""

    class _Session(requests.Session):
        def request(self, method: str, url: str,  # type: ignore[override]
                    *args: Any, **kwargs: Any) -> requests.Response:
            kwargs.setdefault("timeout", timeout_s)
            return super().request(method, url, *args, **kwargs)

    session = _Session()
    session.headers["User-Agent"] = REQUESTS_USER_AGENT + " (autograder)"
    return session


class OidcLogin(OIDCLogin):
    """Login initiation: the redirect to the platform's OIDC auth endpoint."""

    def get_redirect(self, url: str) -> Redirect[Response]:
        return _Redirect(url, self._cookie_service)


class Launch(MessageLaunch):
    """The id_token POST: every check the library makes (state, nonce, issuer and client id,
    signature against the platform's JWKS, deployment, message), plus: ``exp``, ``iat`` and
    ``nonce`` are required, and with several audiences ``azp`` must be our client id."""

    def __init__(self, request: LtiRequest, tool_config: Any, db: ServiceDB,
                 timeout_s: float) -> None:
        super().__init__(request, tool_config, session_service=LtiSessions(request, db),
                         cookie_service=LtiCookies(request),
                         requests_session=timeout_session(timeout_s))
        self.set_jwt_verify_options({"verify_aud": False, "require": ["exp", "iat", "nonce"]})

    def _get_request_param(self, key: str) -> str:
        return self._request.get_param(key)

    def validate_registration(self) -> Launch:
        super().validate_registration()
        body = self._get_jwt_body()
        aud = body.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and body.get("azp") != self.get_client_id():
            from pylti1p3.exception import LtiMessageValidationException

            raise LtiMessageValidationException("several audiences and no azp naming our "
                                                "client id")
        return self


class Connector(ServiceConnector):
    """OAuth2 client credentials for AGS and NRPS: the access token of a scope set is reused
    until a minute before it expires (per connector: a sender makes one and keeps it)."""

    def __init__(self, registration: Registration, private_pem: str, timeout_s: float) -> None:
        super().__init__(registration, timeout_session(timeout_s))
        self._kid = public_jwk(private_pem)["kid"]
        self._tokens: dict[str, tuple[str, float]] = {}

    def _get_cached_access_token(self, scope_key: str) -> str | None:
        token, until = self._tokens.get(scope_key, ("", 0.0))
        return token if token and until > time.monotonic() else None

    def _cache_access_token(self, scope_key: str, access_token: str, expires_in: float) -> None:
        self._tokens[scope_key] = (access_token, time.monotonic() + float(expires_in or 0) - 60)

    def forget_tokens(self) -> None:
        """Drop the kept tokens (the LMS answered 401: the token was revoked)."""
        self._tokens.clear()

    def encode_jwt(self, message: dict[str, str | int], private_key: str,
                   headers: dict[str, str]) -> str:
        # The platform finds our key in our JWKS by this kid.
        return super().encode_jwt(message, private_key, {**headers, "kid": self._kid})
