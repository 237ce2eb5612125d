"""``autograder lti keygen`` and ``autograder lti show-config``: the tool's key, and what to type
into the LMS when registering the tool (registered on the main group by autograder/cli.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click

DEFAULT_KEY = Path("secrets/lti-private.pem")

course_option = click.option(
    "--course", "course_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The course repository (default: the one containing the current directory).")


def _course_root(course_dir: Path | None) -> Path:
    from autograder.course import Course

    return Course.find(course_dir).root


@click.group("lti")
def lti_group() -> None:
    """LTI 1.3 with an LMS: the tool's key and its registration (see docs/lti.md)."""


@lti_group.command("keygen")
@course_option
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"Where to write the private key (default: [lti] private_key, else "
                   f"{DEFAULT_KEY} in the course).")
def keygen(course_dir: Path | None, output: Path | None) -> None:
    """Make the tool's RSA key (mode 0600; never commit it) and print its public JWK."""
    from autograder.config import load_course
    from autograder.service.lti.config import generate_private_key, lti_table, public_jwk

    root = _course_root(course_dir)
    if output is None:
        table = lti_table(load_course(root)) or {}
        output = Path(str(table.get("private_key") or DEFAULT_KEY))
    path = output if output.is_absolute() else root / output
    pem = generate_private_key(path)
    click.echo(f"wrote {path} (keep it out of git; the LMS only ever sees the public key)")
    click.echo(f"in course.toml: [lti] private_key = \"{output}\"")
    click.echo(json.dumps(public_jwk(pem), indent=2))


@lti_group.command("show-config")
@course_option
@click.option("--url", "base_url", default="http://127.0.0.1:8000", show_default=True,
              help="The address the LMS reaches the service at (https in a deployment).")
def show_config(course_dir: Path | None, base_url: str) -> None:
    """Check the [lti] table and print what to enter in the LMS's tool registration."""
    from autograder.config import ConfigError, load_course
    from autograder.service.lti.config import load_lti, public_jwk, tool_urls

    root = _course_root(course_dir)
    cfg = load_lti(root, load_course(root))
    if cfg is None:
        raise ConfigError(f"{root / 'course.toml'} has no [lti] table; see docs/lti.md "
                          f"(run `autograder lti keygen` for the key first)")
    urls = tool_urls(base_url)
    click.echo("Tool registration (enter these in the LMS):")
    click.echo(f"  OIDC login / initiation URL: {urls['login_url']}")
    click.echo(f"  Redirect / launch URL:       {urls['launch_url']}")
    click.echo(f"  Public JWKS URL:             {urls['jwks_url']}")
    click.echo("  Services: Assignment and Grade Services (line items, scores), "
               "Names and Role Provisioning")
    click.echo("  On each assignment link: custom parameter assignment=NAME")
    click.echo("  Public key (JWK):")
    click.echo("    " + json.dumps(public_jwk(cfg.private_key_pem())))
    click.echo("Platforms in course.toml:")
    for p in cfg.platforms:
        click.echo(f"  {p.issuer}  client id {p.client_id}  deployments "
                   f"{', '.join(p.deployment_ids)}")
        click.echo(f"    auth {p.auth_login_url}\n    token {p.auth_token_url}\n"
                   f"    jwks {p.key_set_url}")
