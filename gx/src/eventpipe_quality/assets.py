"""Make GX's Data Docs render offline.

GX's HTML templates load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from public CDNs and show
logos from S3. We vendor those files (pinned npm tarballs, checked against their sha512 integrity, cached under
~/.cache/eventpipe/gx-assets-<manifest digest>), copy them next to the docs once per quality directory, and
rewrite every page so that each CDN reference points at the local copy. Links to GX's website become inert, so
a page contains no remote URL at all.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from eventpipe_common.errors import DependencyUnavailableError

NPM_REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class Package:
    """An npm tarball and the files we take from it (path inside `package/` -> path under the assets dir)."""

    name: str
    version: str
    integrity: str
    files: tuple[tuple[str, str], ...]

    @property
    def tarball_url(self) -> str:
        return f"{NPM_REGISTRY}/{self.name}/-/{self.name.rsplit('/', 1)[-1]}-{self.version}.tgz"


FA_FONTS = tuple(
    (f"webfonts/{font}.{ext}", f"fontawesome/webfonts/{font}.{ext}")
    for font in ("fa-brands-400", "fa-regular-400", "fa-solid-900", "fa-v4compatibility")
    for ext in ("woff2", "ttf")
)

PACKAGES: tuple[Package, ...] = (
    Package("bootstrap", "4.3.1",
            "sha512-rXqOmH1VilAt2DyPzluTi2blhk17bO7ef+zLLPlWvG494pDxcM234pJ8wTc/6R40UWizAIIMgxjvxZg5kmsbag==",
            (("dist/css/bootstrap.min.css", "bootstrap/bootstrap.min.css"),
             ("dist/js/bootstrap.min.js", "bootstrap/bootstrap.min.js"))),
    Package("bootstrap-table", "1.19.1",
            "sha512-WvV+l1AI/C+zThaKmfHmi/IuayVNB0qdFyEhFx1jyZhO0oLtNJNANkCR3rvJf6Dkh72dsLElxpE/bzK9seEQLA==",
            (("dist/bootstrap-table.min.css", "bootstrap-table/bootstrap-table.min.css"),
             ("dist/bootstrap-table.min.js", "bootstrap-table/bootstrap-table.min.js"),
             ("dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
              "bootstrap-table/bootstrap-table-filter-control.min.css"),
             ("dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
              "bootstrap-table/bootstrap-table-filter-control.min.js"))),
    Package("jquery", "3.7.1",
            "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==",
            (("dist/jquery.min.js", "jquery/jquery.min.js"),)),
    Package("popper.js", "1.12.9",
            "sha512-s0EEi9xiSCdqz9lV4IiVH5yIZnDX/U1t0tCjB+0jXx9jW8lrR7kOpVupiUg175ogqVoudpDXHF1p6dKATCHMeg==",
            (("dist/umd/popper.min.js", "popper/popper.min.js"),)),
    Package("bootstrap-datepicker", "1.9.0",
            "sha512-9rYYbaVOheGYxjOr/+bJCmRPihfy+LkLSg4fIFMT9Od8WwWB/MB50w0JO1eBgKUMbb7PFHQD5uAfI3ArAxZRXA==",
            (("dist/css/bootstrap-datepicker.min.css", "bootstrap-datepicker/bootstrap-datepicker.min.css"),
             ("dist/js/bootstrap-datepicker.min.js", "bootstrap-datepicker/bootstrap-datepicker.min.js"))),
    Package("@forevolve/bootstrap-dark", "1.1.0",
            "sha512-A3ucpEpxPoTVO490lZZCfjPXxv832l7mm1IxX3bXyxvgwnPGXDLyh7dWrphXKO8YBAu3EswbBEu3VSW8NRMW3A==",
            (("dist/css/bootstrap-prefers-dark.css", "bootstrap-dark/bootstrap-prefers-dark.css"),)),
    Package("@fortawesome/fontawesome-free", "6.6.0",
            "sha512-60G28ke/sXdtS9KZCpZSHHkCbdsOGEhIUGlwq6yhY74UpTiToIh8np7A8yphhM4BWsvNFtIvLpi4co+h9Mr9Ow==",
            (("css/all.min.css", "fontawesome/css/all.min.css"), *FA_FONTS)),
    Package("vega", "5.33.1",
            "sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw==",
            (("build/vega.min.js", "vega/vega.min.js"),)),
    Package("vega-lite", "5.23.0",
            "sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA==",
            (("build/vega-lite.min.js", "vega/vega-lite.min.js"),)),
    Package("vega-embed", "6.29.0",
            "sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q==",
            (("build/vega-embed.min.js", "vega/vega-embed.min.js"),)),
)

# The CDN references in GX's templates (great_expectations/render/view/templates) -> our vendored file.
CDN_MAP: dict[str, str] = {
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/bootstrap-table-filter-control.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper/popper.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark/bootstrap-prefers-dark.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega/vega-embed.min.js",
}

# GX's logos on S3 -> the copies GX itself puts under <site>/static/images.
GX_IMAGES_PREFIX = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
LOCAL_LOGO = "static/images/logo-long.png"

# XML namespace names (xmlns="http://www.w3.org/2000/svg") identify a vocabulary and are never fetched.
REMOTE_URL = re.compile(r"""(?:https?:)?//(?!www\.w3\.org/)[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'<>()]*""")
_SRI_ATTRS = re.compile(r"""\s+(?:integrity|crossorigin)=("[^"]*"|'[^']*')""")
_TAG = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE)
_STATIC_REF = re.compile(r"""(?P<attr>\b(?:href|src))=(?P<q>["'])(?:\.\./)*static/""")
_ATTR_URL = re.compile(r"""(?P<attr>\b(?:href|src))=(?P<q>["'])(?P<url>(?:https?:)?//[^"']*)(?P=q)""")


def manifest_digest() -> str:
    """Names the cache directory: changes whenever a pinned package or file list changes."""
    text = "\n".join(f"{p.name}@{p.version}:{p.integrity}:{p.files}" for p in PACKAGES)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def assets_complete(assets_dir: Path) -> bool:
    return all((assets_dir / dest).is_file() for p in PACKAGES for _, dest in p.files)


def _check_integrity(data: bytes, integrity: str, what: str) -> None:
    algo, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if actual != expected:
        raise DependencyUnavailableError(f"{what}: integrity mismatch ({algo})", package=what)


def fetch_assets(assets_dir: Path, timeout: float = 60.0) -> Path:
    """Download the pinned packages (once) and extract the files the Data Docs need into `assets_dir`."""
    if assets_complete(assets_dir):
        return assets_dir
    staging = assets_dir.with_name(f"{assets_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    for package in PACKAGES:
        what = f"{package.name}@{package.version}"
        try:
            with urllib.request.urlopen(package.tarball_url, timeout=timeout) as response:
                data = response.read()
        except OSError as exc:
            raise DependencyUnavailableError(f"cannot download {what} from {NPM_REGISTRY}: {exc}",
                                             package=what) from exc
        _check_integrity(data, package.integrity, what)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for source, dest in package.files:
                member = tar.extractfile(f"package/{source}")
                if member is None:
                    raise DependencyUnavailableError(f"{what}: {source} missing from the tarball", package=what)
                target = staging / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(member.read())
    if assets_dir.exists():
        shutil.rmtree(assets_dir)
    assets_dir.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(assets_dir)
    return assets_dir


def install_vendor_dir(assets_dir: Path, vendor_dir: Path) -> bool:
    """Copy the vendored files next to the docs (once); False when the assets were never fetched."""
    if not assets_complete(assets_dir):
        return False
    if not assets_complete(vendor_dir):
        shutil.copytree(assets_dir, vendor_dir, dirs_exist_ok=True)
    return True


def _relative(target: Path, from_dir: Path) -> str:
    return PurePosixPath(os.path.relpath(target, from_dir)).as_posix()


def localize_html(html: str, page_dir: Path, vendor_dir: Path, site_dir: Path) -> str:
    """Rewrite one page: CDN files -> vendored copies, GX logos -> the site's own, other remote links inert."""

    def tag(match: re.Match[str]) -> str:
        text = match.group(0)
        if "//" not in text:
            return text
        return _SRI_ATTRS.sub("", text)  # SRI + CORS attributes break loading from file://

    def attr(match: re.Match[str]) -> str:
        url = match.group("url")
        q = match.group("q")
        if url in CDN_MAP:
            local = _relative(vendor_dir / CDN_MAP[url], page_dir)
        elif url.startswith(GX_IMAGES_PREFIX):
            local = _relative(site_dir / LOCAL_LOGO, page_dir)
        else:
            local = "#"
        return f"{match.group('attr')}={q}{local}{q}"

    def static(match: re.Match[str]) -> str:
        # GX miscounts the depth of validation pages whose suite name has dots (favicon links break).
        return f"{match.group('attr')}={match.group('q')}{_relative(site_dir / 'static', page_dir)}/"

    html = _TAG.sub(tag, html)
    html = _ATTR_URL.sub(attr, html)
    html = _STATIC_REF.sub(static, html)
    # Remote URLs left in text or scripts (e.g. an image base URL in inline JS) are neutralised too.
    return REMOTE_URL.sub(lambda m: _relative(site_dir / LOCAL_LOGO, page_dir)
                          if m.group(0).startswith(GX_IMAGES_PREFIX) else "#", html)


def localize_site(site_dir: Path, vendor_dir: Path) -> int:
    """Rewrite every HTML page and GX stylesheet under `site_dir`; returns how many files were rewritten."""
    files = 0
    for page in [*site_dir.rglob("*.html"), *site_dir.rglob("*.css")]:
        if vendor_dir in page.parents:
            continue
        text = page.read_text(encoding="utf-8")
        page.write_text(localize_html(text, page.parent, vendor_dir, site_dir), encoding="utf-8")
        files += 1
    return files


def remote_urls(text: str) -> list[str]:
    """Every remote URL in a page (the offline test asserts there is none)."""
    return REMOTE_URL.findall(text)
