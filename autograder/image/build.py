"""``autograder image build``: the docker sandbox's grading image, from local material only.

1. The base: a Debian bookworm root made with ``debootstrap --variant=minbase`` (Debian's
   python3, 3.11, and pip) and turned into an image with ``docker import``; or an image the
   course names (``--base``, e.g. a CUDA image at a site with a registry; it needs python3
   3.11 and pip, and keeps its own torch if it has one).
2. The Dockerfile beside this module, built with BuildKit (``DOCKER_BUILDKIT=1``): pip installs
   the local torch CPU wheel and the grader's own numpy and msgpack versions, with the host's CA
   bundle and pip settings bind-mounted for that step only; then the runner's files
   (``autograder/__init__.py``, ``autograder/protocol.py``, ``autograder/runner/``), nothing else.

Cache: the image carries a label with a hash of every input (Dockerfile, base image id, wheel,
runner files, versions, pip settings); a build whose hash matches the existing image's label
does nothing.
"""

from __future__ import annotations

import configparser
import hashlib
import importlib.metadata
import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import autograder
from autograder.errors import UserError
from autograder.sandbox import policy

DEFAULT_TAG = "autograder-runner:latest"
BASE_TAG = "autograder-base:bookworm"
INPUTS_LABEL = "org.autograder.inputs"
BASE_LABEL = "org.autograder.base-inputs"
# A hash of the runner files in the image: the docker sandbox refuses an image whose runner is
# not the one this installation speaks to (an out-of-date image would grade with an old runner).
RUNNER_LABEL = "org.autograder.runner"
SUITE = "bookworm"
DEBOOTSTRAP_PACKAGES = ("python3", "python3-pip", "ca-certificates")
WHEEL_DIR = Path(os.environ.get("AUTOGRADER_WHEEL_DIR", "/opt/wheels"))
TORCH_WHEEL_GLOB = "torch-*+cpu-cp311-cp311-*.whl"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DOCKERFILE = Path(__file__).with_name("Dockerfile")
#: What the image holds of the platform: the runner and what it imports, nothing else.
RUNNER_FILES = policy.RUNNER_FILES


class ImageBuildError(UserError):
    """The image could not be built; the message says which step failed and why."""


def docker_cli() -> str:
    """The docker client: ``AUTOGRADER_DOCKER``, else Debian's ``/usr/bin/docker`` (its
    BuildKit needs no buildx plugin), else the first on PATH."""
    if os.environ.get("AUTOGRADER_DOCKER"):
        return os.environ["AUTOGRADER_DOCKER"]
    if os.path.exists("/usr/bin/docker"):
        return "/usr/bin/docker"
    return shutil.which("docker") or "docker"


def _run(args: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, **kwargs)
    except FileNotFoundError:
        raise ImageBuildError(f"{what}: {args[0]} is not installed "
                              f"(run `bash scripts/services.sh`)") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-25:])
        raise ImageBuildError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc


def image_label(image: str, label: str) -> str | None:
    """A label of a local image; None when the image does not exist."""
    proc = subprocess.run([docker_cli(), "image", "inspect", "--format",
                           f'{{{{ index .Config.Labels "{label}" }}}}', image],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    value = proc.stdout.strip()
    return "" if value == "<no value>" else value


def image_id(image: str) -> str | None:
    proc = subprocess.run([docker_cli(), "image", "inspect", "--format", "{{.Id}}", image],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def torch_wheel() -> Path:
    wheels = sorted(WHEEL_DIR.glob(TORCH_WHEEL_GLOB))
    if not wheels:
        raise ImageBuildError(f"no torch CPU wheel ({TORCH_WHEEL_GLOB}) in {WHEEL_DIR}; set "
                              f"AUTOGRADER_WHEEL_DIR to the folder that holds it")
    return wheels[-1]


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def requirements() -> list[str]:
    """numpy and msgpack at the grader's own versions, so both sides decode alike."""
    reqs = []
    for name in ("numpy", "msgpack"):
        try:
            reqs.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            reqs.append(name)
    return reqs


def pip_config() -> str:
    """The host's pip settings (global section and PIP_* variables) minus local paths, which do
    not exist inside the build; the CA bundle is given separately."""
    cfg = configparser.ConfigParser()
    files = ["/etc/pip.conf", "/etc/xdg/pip/pip.conf", os.path.expanduser("~/.pip/pip.conf"),
             os.path.expanduser("~/.config/pip/pip.conf")]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(os.environ["PIP_CONFIG_FILE"])
    cfg.read([f for f in files if os.path.isfile(f)])
    settings: dict[str, str] = dict(cfg["global"]) if cfg.has_section("global") else {}
    for key, value in os.environ.items():
        if key.startswith("PIP_") and key != "PIP_CONFIG_FILE":
            settings[key[4:].lower().replace("_", "-")] = value
    out: dict[str, str] = {}
    for key, value in settings.items():
        if key in ("cert", "client-cert", "config-file", "target", "prefix", "root", "src"):
            continue
        kept = [v for v in value.split() if not v.startswith(("file:", "/", "~", "."))]
        if kept:
            out[key] = " ".join(kept)
    text = io.StringIO()
    result = configparser.ConfigParser()
    result["global"] = dict(sorted(out.items()))
    result.write(text)
    return text.getvalue()


def runner_sources() -> dict[str, bytes]:
    root = Path(autograder.__file__).parent
    return {rel: (root / rel).read_bytes() for rel in RUNNER_FILES}


def _debootstrap_mirror() -> list[str]:
    """The Debian mirror apt already uses here (none: debootstrap's default)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        block: dict[str, str] = {}
        for line in path.read_text().splitlines() + [""]:
            if not line.strip():
                if (SUITE in block.get("suites", "").split()
                        and block.get("uris", "").rstrip("/").endswith("/debian")):
                    return [block["uris"].split()[0]]
                block = {}
            elif ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                block[k.strip().lower()] = v.strip()
    sources = Path("/etc/apt/sources.list")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                return [p for p in parts[1:] if not p.startswith("[")][:1]
    return []


def build_base(log: Callable[[str], None]) -> str:
    """The debootstrapped Debian root as an image (cached by its own inputs)."""
    inputs = hashlib.sha256(f"{SUITE} minbase {','.join(DEBOOTSTRAP_PACKAGES)}".encode()).hexdigest()
    if image_label(BASE_TAG, BASE_LABEL) == inputs:
        log(f"base image {BASE_TAG} is up to date")
        return BASE_TAG
    if not shutil.which("debootstrap"):
        raise ImageBuildError("debootstrap is not installed (apt-get install debootstrap, or run "
                              "`bash scripts/services.sh`), or pass --base IMAGE")
    if os.geteuid() != 0:
        raise ImageBuildError("debootstrap needs root; run the build as root or pass --base")
    log(f"debootstrap {SUITE} (minbase, {', '.join(DEBOOTSTRAP_PACKAGES)})")
    with tempfile.TemporaryDirectory(prefix="autograder-rootfs-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(DEBOOTSTRAP_PACKAGES)}",
              SUITE, str(root), *_debootstrap_mirror()], "debootstrap")
        # Package caches and lists are not needed in the image.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (root / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        log("docker import")
        tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        _run([docker_cli(), "import", "--change", "ENV LANG=C.UTF-8",
              "--change", f"LABEL {BASE_LABEL}={inputs}", "-", BASE_TAG], "docker import",
             stdin=tar.stdout)
        tar.wait()
    return BASE_TAG


@dataclass
class BuildResult:
    tag: str
    built: bool          # False: the cached image was up to date
    seconds: float
    size_mb: float
    inputs: str


def runner_hash() -> str:
    """The hash of the runner files this installation would put into an image."""
    h = hashlib.sha256()
    for rel, data in sorted(runner_sources().items()):
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def inputs_hash(base_id: str, wheel: Path, pip_conf: str, reqs: list[str]) -> str:
    h = hashlib.sha256(RUNNER_LABEL.encode())  # images without the label are rebuilt
    for part in (DOCKERFILE.read_bytes(), base_id.encode(), wheel.name.encode(),
                 _file_hash(wheel).encode(), pip_conf.encode(), " ".join(reqs).encode()):
        h.update(hashlib.sha256(part).digest())
    for rel, data in sorted(runner_sources().items()):
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def build_image(tag: str = DEFAULT_TAG, base: str | None = None, force: bool = False,
                log: Callable[[str], None] = print) -> BuildResult:
    started = time.monotonic()
    base_image = base or build_base(log)
    base_id = image_id(base_image)
    if base_id is None:
        raise ImageBuildError(f"the base image {base_image} is not available locally (there is "
                              f"no registry here: `docker load` or `docker import` it first)")
    wheel = torch_wheel()
    pip_conf = pip_config()
    reqs = requirements()
    inputs = inputs_hash(base_id, wheel, pip_conf, reqs)
    if not force and image_label(tag, INPUTS_LABEL) == inputs:
        log(f"{tag} is up to date (inputs {inputs[:12]})")
        return BuildResult(tag, False, time.monotonic() - started, image_size_mb(tag), inputs)
    with tempfile.TemporaryDirectory(prefix="autograder-image-") as tmp:
        ctx = Path(tmp)
        (ctx / "build").mkdir()
        try:
            os.link(wheel, ctx / "build" / wheel.name)
        except OSError:
            shutil.copy(wheel, ctx / "build" / wheel.name)
        (ctx / "build" / "torch-wheel").write_text(wheel.name)
        (ctx / "build" / "requirements").write_text(" ".join(reqs))
        (ctx / "build" / "pip.conf").write_text(pip_conf)
        if CA_BUNDLE.is_file():
            shutil.copy(CA_BUNDLE, ctx / "build" / "ca-certificates.crt")
        else:
            (ctx / "build" / "ca-certificates.crt").write_text("")
        for rel, data in runner_sources().items():
            dest = ctx / "runner" / "autograder" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        shutil.copy(DOCKERFILE, ctx / "Dockerfile")
        log(f"docker build {tag} from {base_image}")
        env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        _run([docker_cli(), "build", "--progress=plain", "--build-arg", f"BASE={base_image}",
              "--label", f"{INPUTS_LABEL}={inputs}", "--label", f"{RUNNER_LABEL}={runner_hash()}",
              "-t", tag, str(ctx)], "docker build",
             env=env)
    # Earlier builds left untagged: their layers below the runner's files are shared anyway.
    subprocess.run([docker_cli(), "image", "prune", "-f", "--filter", f"label={INPUTS_LABEL}"],
                   capture_output=True)
    return BuildResult(tag, True, time.monotonic() - started, image_size_mb(tag), inputs)


def image_size_mb(tag: str) -> float:
    proc = subprocess.run([docker_cli(), "image", "inspect", "--format", "{{.Size}}", tag],
                          capture_output=True, text=True)
    return int(proc.stdout.strip() or 0) / 2**20 if proc.returncode == 0 else 0.0
