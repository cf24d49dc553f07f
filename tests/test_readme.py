"""The README and docs/ document every setting and every metric the service really has, and their links work."""

import re
from pathlib import Path

from service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
README_PATH = ROOT / "README.md"
README = README_PATH.read_text()
DOCS = sorted((ROOT / "docs").glob("*.md"))
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()  # the settings and metrics tables live here
README_MAX_LINES = 220
DESIGN_METRICS = (
    "wgan_requests_total",
    "wgan_request_duration_seconds",
    "wgan_queue_depth",
    "wgan_queue_wait_seconds",
    "wgan_batch_size",
    "wgan_inference_seconds",
    "wgan_items_total",
    "wgan_model_info",
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_every_setting_is_in_the_settings_table() -> None:
    missing = [
        name
        for name in ServiceSettings.model_fields
        if f"`WGAN_{name.upper()}`" not in OPERATIONS or f"`--{name.replace('_', '-')}`" not in OPERATIONS
    ]
    assert missing == [], f"docs/operations.md's settings table lacks {missing}"


def test_every_metric_is_listed() -> None:
    listed = set(re.findall(r"\| `(wgan_[a-z_]+)` \|", OPERATIONS))
    assert set(DESIGN_METRICS) <= listed


def test_quick_start_names_the_two_commands() -> None:
    assert "make serve" in README and "make test" in README


def test_readme_stays_short() -> None:
    lines = len(README.splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move the long form to docs/"


def test_readme_links_every_docs_file() -> None:
    unlinked = [doc.name for doc in DOCS if f"(docs/{doc.name})" not in README]
    assert unlinked == [], f"README.md does not link {unlinked}"


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces turned into hyphens."""
    headings = re.findall(r"^#{1,6} +(.+?) *$", re.sub(r"```.*?```", "", markdown, flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_relative_links_point_to_files_and_headings_that_exist() -> None:
    broken = []
    for page in (README_PATH, *DOCS):
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file.read_text()):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == [], f"broken links: {broken}"
