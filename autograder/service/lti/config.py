"""Where the LTI settings come from: course.toml's ``[lti]`` table (or the JSON file it names),
the tool's RSA key, and the PyLTI1p3 tool configuration built from them.

```toml
[lti]
private_key = "secrets/lti-private.pem"   # relative to the course folder; never commit it
# config_file = "lti.json"                # or: the platforms (and the keys below) in JSON

[[lti.platforms]]
issuer = "https://canvas.instructure.com"
client_id = "10000000000042"
deployment_ids = ["17:abcdef"]
auth_login_url = "https://sso.canvaslms.com/api/lti/authorize_redirect"  # OIDC auth endpoint
auth_token_url = "https://sso.canvaslms.com/login/oauth2/token"          # OAuth2 token endpoint
key_set_url = "https://sso.canvaslms.com/api/lti/security/jwks"          # the platform's JWKS
# auth_audience = "..."                   # only if the platform's token audience is not the URL
```

``autograder lti keygen`` writes the key; ``autograder lti show-config`` prints what to enter in
the LMS (login, launch and JWKS URLs, the public key) and checks the table.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from autograder.config import ConfigError

# Paths of the tool's endpoints (routes.py serves them; show-config prints them).
LOGIN_PATH = "/lti/login"
LAUNCH_PATH = "/lti/launch"
JWKS_PATH = "/lti/jwks"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlatformConfig(_Strict):
    """One LMS registration: what the LMS showed when the tool was added to it."""

    issuer: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    deployment_ids: tuple[str, ...] = Field(min_length=1)
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    auth_audience: str | None = None

    @field_validator("auth_login_url", "auth_token_url", "key_set_url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"{url!r} is not an http(s) URL; copy it from the LMS's developer "
                             f"key or tool registration page")
        return url


class PassbackPolicy(_Strict):
    """How hard grade passback tries before a score is marked failed."""

    attempts: int = Field(default=5, ge=1, le=20)        # HTTP tries per score
    backoff_s: float = Field(default=1.0, gt=0, le=60)   # first wait; doubled each try (jittered)
    max_wait_s: float = Field(default=60.0, gt=0, le=3600)  # cap on one wait, Retry-After included
    timeout_s: float = Field(default=15.0, gt=0, le=300)    # one HTTP request to the LMS


class LtiConfig(_Strict):
    """The ``[lti]`` table, validated. ``private_key`` is resolved against the course folder."""

    private_key: Path
    platforms: tuple[PlatformConfig, ...] = Field(min_length=1)
    passback: PassbackPolicy = PassbackPolicy()

    def platform(self, issuer: str, client_id: str | None = None) -> PlatformConfig | None:
        """The registration of ``issuer`` (and ``client_id`` when given)."""
        for p in self.platforms:
            if p.issuer == issuer and (client_id is None or p.client_id == client_id):
                return p
        return None

    def private_key_pem(self) -> str:
        """The tool's private key (PEM); a clear error if it is missing or not a key."""
        try:
            text = self.private_key.read_text(encoding="ascii")
        except FileNotFoundError:
            raise ConfigError(f"[lti] private_key {self.private_key}: file not found; create it "
                              f"with `autograder lti keygen`") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"[lti] private_key {self.private_key}: cannot read it ({e})") from None
        if "PRIVATE KEY-----" not in text:
            raise ConfigError(f"[lti] private_key {self.private_key}: not a PEM private key; "
                              f"create one with `autograder lti keygen`")
        return text


def lti_table(course_config: Any) -> dict | None:
    """The raw ``[lti]`` table of a loaded course.toml (kept by CourseConfig as an extra)."""
    extra = getattr(course_config, "model_extra", None) or {}
    table = extra.get("lti")
    return table if isinstance(table, dict) else None


def load_lti(course_root: Path, course_config: Any) -> LtiConfig | None:
    """The course's LTI settings, None when course.toml has no ``[lti]`` table. Relative paths
    (``private_key``, ``config_file``) are read from the course folder."""
    table = lti_table(course_config)
    if table is None:
        return None
    where = f"{course_root / 'course.toml'} [lti]"
    data = dict(table)
    config_file = data.pop("config_file", None)
    if config_file is not None:
        path = course_root / str(config_file)
        where = str(path)
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{course_root / 'course.toml'} [lti] config_file: {path} not "
                              f"found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a JSON object with \"platforms\" and "
                              f"\"private_key\"")
        data = {**loaded, **data}
    try:
        cfg = LtiConfig.model_validate(data)
    except ValidationError as e:
        lines = [f"  {'.'.join(str(p) for p in err['loc']) or '(top level)'}: "
                 + ("unknown key (see docs/lti.md for the keys)"
                    if err["type"] == "extra_forbidden" else err["msg"])
                 for err in e.errors()]
        raise ConfigError(f"{where}: invalid LTI configuration\n" + "\n".join(lines)) from None
    if not cfg.private_key.is_absolute():
        cfg = cfg.model_copy(update={"private_key": course_root / cfg.private_key})
    return cfg


# -- keys -----------------------------------------------------------------------------------------

def generate_private_key(path: Path) -> str:
    """Write a new 2048-bit RSA private key (PEM, mode 0600) to ``path``; refuses to overwrite.
    Returns the PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if path.exists():
        raise ConfigError(f"{path} exists; keep it (the LMS knows its public key) or delete it "
                          f"first to make a new one")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(pem)
    return pem


def public_pem(private_pem: str) -> str:
    """The public half of a PEM private key, as PEM."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo
                                         ).decode("ascii")


def public_jwk(private_pem: str) -> dict[str, str]:
    """The tool's public key as a JWK, its ``kid`` the key's RFC 7638 thumbprint (stable)."""
    from jwcrypto.jwk import JWK

    jwk = JWK.from_pem(public_pem(private_pem).encode("ascii"))
    out = json.loads(jwk.export_public())
    out.update(kid=jwk.thumbprint(), alg="RS256", use="sig")
    return out


def tool_conf(cfg: LtiConfig) -> Any:
    """PyLTI1p3's tool configuration for these platforms (one issuer may have several client
    ids: the launch's audience picks one, so a token for another client id finds none)."""
    from pylti1p3.tool_config import ToolConfDict

    issuers: dict[str, list[dict[str, Any]]] = {}
    for p in cfg.platforms:
        issuers.setdefault(p.issuer, []).append({
            "default": not issuers.get(p.issuer), "client_id": p.client_id,
            "auth_login_url": p.auth_login_url, "auth_token_url": p.auth_token_url,
            "auth_audience": p.auth_audience, "key_set_url": p.key_set_url, "key_set": None,
            "deployment_ids": list(p.deployment_ids)})
    conf = ToolConfDict(issuers)  # type: ignore[arg-type]
    private = cfg.private_key_pem()
    public = public_pem(private)
    for p in cfg.platforms:
        conf.set_private_key(p.issuer, private, client_id=p.client_id)
        conf.set_public_key(p.issuer, public, client_id=p.client_id)
    return conf


def tool_urls(base_url: str) -> dict[str, str]:
    """The URLs an LMS asks for when the tool is registered."""
    base = base_url.rstrip("/")
    return {"login_url": base + LOGIN_PATH, "launch_url": base + LAUNCH_PATH,
            "redirect_uris": base + LAUNCH_PATH, "jwks_url": base + JWKS_PATH}
