"""A small LMS for the LTI tests, served on 127.0.0.1 in a thread: its own RSA key and JWKS, an
OAuth2 token endpoint (``client_credentials`` with a JWT assertion signed by the tool's key),
an OIDC auth endpoint that answers with the auto-posting form of an ``id_token``, AGS line
items and scores (recorded; told to answer 429/5xx or drop the connection for the next calls),
and an NRPS memberships endpoint (paged, two members a page).

    with FakeLMS(tool_jwk) as lms:
        lms.add_user("u-alice", roles=[LEARNER], email="alice@x.edu", sourcedid="alice")
        lms.add_link("rl-toy", custom={"assignment": "toy"})
        lms.platform_config()  # the [[lti.platforms]] entry for course.toml
"""

from __future__ import annotations

import html
import json
import re
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto.jwk import JWK

LIS = "http://purl.imsglobal.org/vocab/lis/v2/membership"
LEARNER = LIS + "#Learner"
INSTRUCTOR = LIS + "#Instructor"
TEACHING_ASSISTANT = LIS + "/Instructor#TeachingAssistant"
CONTENT_DEVELOPER = LIS + "#ContentDeveloper"
MENTOR = LIS + "#Mentor"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_SCOPES = ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
              "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
              "https://purl.imsglobal.org/spec/lti-ags/scope/score"]


def new_key() -> tuple[str, dict[str, Any]]:
    """A fresh RSA key: (private PEM, public JWK with a kid)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    jwk = JWK.from_pem(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    public = json.loads(jwk.export_public())
    public.update(kid=jwk.thumbprint(), alg="RS256", use="sig")
    return pem, public


@dataclass
class User:
    sub: str
    roles: list[str]
    name: str = ""
    email: str = ""
    sourcedid: str = ""
    status: str = "Active"


@dataclass
class Link:
    id: str
    title: str = ""
    custom: dict[str, str] = field(default_factory=dict)
    lineitem: str | None = None  # the id (URL) of the line item the LMS made for it


@dataclass
class Received:
    """One request the fake answered (or dropped)."""

    at: float
    method: str
    path: str
    status: int  # 0: connection dropped
    body: Any = None


class FakeLMS:
    """The LMS; ``url`` once started. Tests read ``requests``, ``scores`` and ``results``."""

    client_id = "autograder-client"
    deployment_id = "deployment-1"
    context_id = "course-ctx-1"

    def __init__(self, tool_jwk: dict[str, Any]) -> None:
        self.tool_jwk = tool_jwk
        self.private_pem, self.public_jwk = new_key()
        self.users: dict[str, User] = {}  # login_hint -> user
        self.links: dict[str, Link] = {}
        self.lineitems: dict[str, dict[str, Any]] = {}  # id URL -> line item
        self.scores: list[dict[str, Any]] = []  # every score accepted, in order
        self.results: dict[tuple[str, str], dict[str, Any]] = {}  # (line item, user) -> last
        self.requests: list[Received] = []
        self.score_faults: list[str] = []  # "429", "500", "drop"... used one per scores call
        self.retry_after = "1"
        self.tokens: set[str] = set()
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- set-up -------------------------------------------------------------------------------

    def add_user(self, login_hint: str, *, roles: list[str], name: str = "", email: str = "",
                 sourcedid: str = "", sub: str | None = None, status: str = "Active") -> User:
        user = User(sub or f"lms-{login_hint}", roles, name, email, sourcedid, status)
        self.users[login_hint] = user
        return user

    def add_link(self, link_id: str, *, title: str = "", custom: dict[str, str] | None = None,
                 with_lineitem: str | None = None, score_maximum: float = 4.0) -> Link:
        """A resource link; ``with_lineitem=TAG`` makes the LMS create its line item too."""
        link = Link(link_id, title or link_id, dict(custom or {}))
        if with_lineitem is not None:
            link.lineitem = self._new_lineitem({"label": title or link_id, "tag": with_lineitem,
                                                "scoreMaximum": score_maximum,
                                                "resourceLinkId": link_id})["id"]
        self.links[link_id] = link
        return link

    def fail_next_scores(self, *faults: str) -> None:
        """The next score calls answer these, in order: an HTTP status ("429", "500", "503") or
        "drop" (the connection is closed without an answer)."""
        self.score_faults.extend(faults)

    def platform_config(self) -> dict[str, Any]:
        return {"issuer": self.url, "client_id": self.client_id,
                "deployment_ids": [self.deployment_id],
                "auth_login_url": self.url + "/auth", "auth_token_url": self.url + "/token",
                "key_set_url": self.url + "/jwks"}

    # -- tokens -------------------------------------------------------------------------------

    def id_token(self, user: User, link: Link, nonce: str, *, key_pem: str | None = None,
                 kid: str | None = None, aud: Any = None, issuer: str | None = None,
                 deployment_id: str | None = None, exp_in: int = 300,
                 extra: dict[str, Any] | None = None) -> str:
        """A signed launch id_token (the arguments forge one: another key, audience...)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer or self.url, "aud": aud if aud is not None else self.client_id,
            "azp": self.client_id, "sub": user.sub, "iat": now, "exp": now + exp_in,
            "nonce": nonce, "name": user.name, "email": user.email,
            CLAIM + "message_type": "LtiResourceLinkRequest", CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": deployment_id or self.deployment_id,
            CLAIM + "target_link_uri": "http://127.0.0.1/lti/launch",
            CLAIM + "resource_link": {"id": link.id, "title": link.title},
            CLAIM + "roles": user.roles,
            CLAIM + "context": {"id": self.context_id, "label": "DL101",
                                "title": "Deep Learning 101"},
            CLAIM + "lis": {"person_sourcedid": user.sourcedid} if user.sourcedid else {},
            CLAIM + "custom": link.custom,
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
                "scope": AGS_SCOPES, "lineitems": self.url + "/lineitems",
                **({"lineitem": link.lineitem} if link.lineitem else {})},
            "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
                "context_memberships_url": self.url + "/memberships",
                "service_versions": ["2.0"]},
            **(extra or {}),
        }
        return jwt.encode(claims, key_pem or self.private_pem, algorithm="RS256",
                          headers={"kid": kid or self.public_jwk["kid"]})

    # -- server -------------------------------------------------------------------------------

    def __enter__(self) -> FakeLMS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> FakeLMS:
        lms = self

        class Handler(_Handler):
            fake = lms

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="fake-lms").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _new_lineitem(self, body: dict[str, Any]) -> dict[str, Any]:
        item = {**body, "id": f"{self.url}/lineitems/{uuid.uuid4().hex[:8]}"}
        self.lineitems[item["id"]] = item
        return item

    def score_calls(self) -> list[Received]:
        return [r for r in self.requests if r.path.endswith("/scores")]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLMS
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing -----------------------------------------------------------------------------

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, payload: Any = None, *, ctype: str = "application/json",
              headers: dict[str, str] | None = None, body: Any = None) -> None:
        data = (payload if isinstance(payload, bytes)
                else json.dumps(payload).encode() if payload is not None else b"")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        with self.fake.lock:
            self.fake.requests.append(Received(time.monotonic(), self.command,
                                               urlsplit(self.path).path, status, body))

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer ") and header[7:] in self.fake.tokens:
            return True
        self._send(401, {"error": "invalid or missing access token"})
        return False

    # -- routes -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/jwks":
            return self._send(200, {"keys": [self.fake.public_jwk]})
        if url.path == "/auth":
            return self._auth(query)
        if url.path == "/lineitems":
            if self._authorized():
                self._send(200, list(self.fake.lineitems.values()),
                           ctype="application/vnd.ims.lis.v2.lineitemcontainer+json")
            return None
        if url.path.startswith("/lineitems/"):
            if self._authorized():
                item = self.fake.lineitems.get(self.fake.url + url.path)
                self._send(200 if item else 404, item or {"error": "no such line item"})
            return None
        if url.path == "/memberships":
            return self._memberships(query)
        return self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        raw = self._body()
        if url.path == "/token":
            return self._token({k: v[0] for k, v in parse_qs(raw.decode()).items()})
        if url.path == "/lineitems":
            if self._authorized():
                self._send(201, self.fake._new_lineitem(json.loads(raw)),
                           ctype="application/vnd.ims.lis.v2.lineitem+json")
            return None
        if url.path.startswith("/lineitems/") and url.path.endswith("/scores"):
            return self._score(url.path, raw)
        return self._send(404, {"error": "not found"})

    def _auth(self, q: dict[str, str]) -> None:
        """OIDC authentication: check the request, answer with the auto-posting id_token."""
        fake = self.fake
        problems = [k for k, v in (("scope", "openid"), ("response_type", "id_token"),
                                   ("response_mode", "form_post"), ("prompt", "none"),
                                   ("client_id", fake.client_id)) if q.get(k) != v]
        user, link = fake.users.get(q.get("login_hint", "")), fake.links.get(
            q.get("lti_message_hint", ""))
        if problems or user is None or link is None or not q.get("nonce") or not q.get("state"):
            return self._send(400, {"error": "invalid_request", "wrong": problems})
        token = fake.id_token(user, link, q["nonce"])
        page = (f'<form id="f" method="post" action="{html.escape(q["redirect_uri"])}">'
                f'<input type="hidden" name="id_token" value="{token}">'
                f'<input type="hidden" name="state" value="{html.escape(q["state"])}">'
                f'</form><script>document.getElementById("f").submit()</script>').encode()
        self._send(200, page, ctype="text/html")

    def _token(self, form: dict[str, str]) -> None:
        """client_credentials with a JWT assertion signed by the tool's key (RFC 7523)."""
        fake = self.fake
        if (form.get("grant_type") != "client_credentials" or form.get("client_assertion_type")
                != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"):
            return self._send(400, {"error": "unsupported_grant_type"})
        try:
            key = JWK(**fake.tool_jwk).export_to_pem()
            header = jwt.get_unverified_header(form.get("client_assertion", ""))
            if header.get("kid") != fake.tool_jwk["kid"]:
                raise jwt.InvalidTokenError(f"unknown kid {header.get('kid')!r}")
            claims = jwt.decode(form["client_assertion"], key, algorithms=["RS256"],
                                audience=fake.url + "/token")
            if claims.get("iss") != fake.client_id or claims.get("sub") != fake.client_id:
                raise jwt.InvalidTokenError("iss/sub is not the client id")
        except (jwt.InvalidTokenError, KeyError, ValueError) as e:
            return self._send(401, {"error": "invalid_client", "why": str(e)})
        token = secrets.token_urlsafe(16)
        fake.tokens.add(token)
        self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                         "scope": form.get("scope", "")})

    def _score(self, path: str, raw: bytes) -> None:
        fake = self.fake
        with fake.lock:
            fault = fake.score_faults.pop(0) if fake.score_faults else None
        if fault == "drop":
            with fake.lock:
                fake.requests.append(Received(time.monotonic(), "POST", path, 0))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if not self._authorized():
            return
        if fault is not None:
            status = int(fault)
            return self._send(status, {"error": "try later"},
                              headers={"Retry-After": fake.retry_after} if status == 429 else None)
        lineitem = fake.url + path[: -len("/scores")]
        body = json.loads(raw)
        wrong = [k for k in ("userId", "scoreGiven", "scoreMaximum", "activityProgress",
                             "gradingProgress", "timestamp") if k not in body]
        if (lineitem not in fake.lineitems or wrong or self.headers.get("Content-Type")
                != "application/vnd.ims.lis.v1.score+json"):
            return self._send(400, {"error": "bad score", "missing": wrong})
        with fake.lock:
            fake.scores.append({**body, "lineitem": lineitem})
            fake.results[(lineitem, body["userId"])] = body
        self._send(204, None, body=body)

    def _memberships(self, q: dict[str, str]) -> None:
        if not self._authorized():
            return
        fake = self.fake
        members = [{"user_id": u.sub, "roles": u.roles, "name": u.name, "email": u.email,
                    "status": u.status,
                    **({"lis_person_sourcedid": u.sourcedid} if u.sourcedid else {})}
                   for u in fake.users.values()]
        page = int(q.get("page", "0"))
        chunk = members[page * 2:(page + 1) * 2]
        headers = {}
        if (page + 1) * 2 < len(members):
            headers["Link"] = f'<{fake.url}/memberships?{urlencode({"page": page + 1})}>; rel="next"'
        self._send(200, {"id": fake.url + "/memberships",
                         "context": {"id": fake.context_id, "title": "Deep Learning 101"},
                         "members": chunk},
                   ctype="application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
                   headers=headers)


def auto_post_form(page: str) -> tuple[str, dict[str, str]]:
    """The action and fields of the fake's auto-posting form (what a browser would post)."""
    action = html.unescape(re.search(r'action="([^"]*)"', page).group(1))  # type: ignore[union-attr]
    fields = {m.group(1): html.unescape(m.group(2))
              for m in re.finditer(r'name="([^"]+)" value="([^"]*)"', page)}
    return action, fields
