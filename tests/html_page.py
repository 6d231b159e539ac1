"""Reading the HTML report as a browser leaves it (``chromium --dump-dom``) or as rolechain writes it: the
counts, the failure groups, the target rows (and which the filter hid), the scripts on the page. And the
headless Chromium the browser tests drive."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest


@dataclass
class Row:
    cells: list[str]
    hidden: bool


class Page(HTMLParser):
    """What a report page shows, read from its HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.causes: list[str] = []  # each failure group's summary line
        self.rows: list[Row] = []
        self.shown = ""
        self.title = ""
        self.scripts = 0
        self.body_attrs: dict[str, str | None] = {}
        self.filter_value: str | None = None
        self._text: list[str] | None = None
        self._into = ""
        self._count_status = ""
        self._in_body_rows = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body_attrs = a
        elif tag == "script":
            self.scripts += 1
        elif tag == "input" and a.get("id") == "filter":
            self.filter_value = a.get("value")
        elif tag == "li" and "count" in (a.get("class") or "").split():
            self._count_status, self._into, self._text = a.get("data-status") or "", "count", []
        elif tag == "summary":
            self._into, self._text = "cause", []
        elif tag == "span" and a.get("id") == "shown":
            self._into, self._text = "shown", []
        elif tag == "title":
            self._into, self._text = "title", []
        elif tag == "tr" and self._in_body_rows:
            self.rows.append(Row([], "hidden" in a))
        elif tag == "td" and self.rows and self._in_body_rows:
            self._into, self._text = "cell", []
        elif tag == "tbody":
            self._in_body_rows = True

    def handle_endtag(self, tag: str) -> None:
        text = " ".join("".join(self._text or []).split())
        if tag == "li" and self._into == "count":
            self.counts[self._count_status] = int(text.split()[0])
        elif tag == "summary" and self._into == "cause":
            self.causes.append(text)
        elif tag == "span" and self._into == "shown":
            self.shown = text
        elif tag == "title" and self._into == "title":
            self.title = text
        elif tag == "td" and self._into == "cell":
            self.rows[-1].cells.append(text)
        elif tag == "tbody":
            self._in_body_rows = False
        else:
            return
        self._into, self._text = "", None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def visible(self) -> list[list[str]]:
        return [r.cells for r in self.rows if not r.hidden]


def read_page(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    """The headless browser's path; skips (fails under CI=true, where .ci/run installs it) without one."""
    found = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    if found is None:
        why = "no Chromium on PATH (`make chromium` installs Debian's package)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test prerequisite missing in CI: {why}")
        pytest.skip(why)
    return found


def dump_dom(url: str, profile: Path) -> str:
    """The DOM headless Chromium holds once ``url`` has loaded and its scripts have run. Chromium resolves no
    host name (the page must need no network); it runs without its sandbox, which root cannot have."""
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
        "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND", "--dump-dom", url,
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = f"Chromium cannot run here: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    if done.returncode != 0 or "<html" not in done.stdout:
        why = f"Chromium cannot run here (exit {done.returncode}): {done.stderr.strip()[-600:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return done.stdout
