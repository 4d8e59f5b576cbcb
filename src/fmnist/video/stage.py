"""What a scene does with the page: navigate, point, click, scroll, wait for what it films.

Every helper films as it goes (a frame after each step), and every wait is an assertion: a
selector that does not appear, or a page that does not answer 200, fails the recording instead
of filming an error page. Headless screenshots show no mouse pointer, so the page gets a drawn
one (an init script) that follows the mouse Playwright moves, and a banner naming the scene.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fmnist.video.recorder import Recorder
from fmnist.video.system import System, VideoError

if TYPE_CHECKING:
    from playwright.sync_api import Page

CURSOR_SCRIPT = """
(() => {
  const install = () => {
    if (document.getElementById("fmnist-video-cursor")) return;
    const dot = document.createElement("div");
    dot.id = "fmnist-video-cursor";
    dot.style.cssText = "position:fixed;left:-40px;top:-40px;width:20px;height:20px;" +
      "border-radius:50%;background:rgba(255,110,20,.6);border:2px solid #fff;" +
      "box-shadow:0 0 0 1px rgba(0,0,0,.45);pointer-events:none;z-index:2147483647;" +
      "transform:translate(-50%,-50%);transition:none";
    document.documentElement.appendChild(dot);
    const at = (e) => { dot.style.left = e.clientX + "px"; dot.style.top = e.clientY + "px"; };
    document.addEventListener("mousemove", at, true);
    const paint = (colour) => () => { dot.style.background = colour; };
    document.addEventListener("mousedown", paint("rgba(230,30,30,.9)"), true);
    document.addEventListener("mouseup", paint("rgba(255,110,20,.6)"), true);
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", install);
  else install();
})();
"""

BANNER_SCRIPT = """
(text) => {
  let banner = document.getElementById("fmnist-video-banner");
  if (!banner) {
    banner = document.createElement("div");
    banner.id = "fmnist-video-banner";
    banner.style.cssText = "position:fixed;right:12px;bottom:12px;padding:6px 12px;" +
      "border-radius:6px;background:rgba(20,24,32,.82);color:#fff;font:600 14px/1.3 " +
      "system-ui,sans-serif;z-index:2147483646;pointer-events:none";
    document.documentElement.appendChild(banner);
  }
  banner.textContent = text;
}
"""


def tid(name: str) -> str:
    """The selector of a ``data-testid``."""
    return f'[data-testid="{name}"]'


@dataclass
class Stage:
    """The page, its recorder, the running system and the files a scene uploads."""

    page: Page
    recorder: Recorder
    system: System
    garment: bytes
    photo: Path
    short: bool
    banner: str = ""
    _mouse: tuple[float, float] = (40.0, 40.0)

    @property
    def timeout_ms(self) -> float:
        """How long a wait may take before the scene fails."""
        return 30_000

    def decorate(self) -> None:
        """Show the scene's banner and the pointer where the mouse is."""
        self.page.evaluate(BANNER_SCRIPT, self.banner)
        self.page.mouse.move(*self._mouse)

    def goto(self, url: str) -> None:
        """Open ``url``; it must answer 200."""
        response = self.page.goto(url, wait_until="load")
        if response is None or response.status != 200:
            status = None if response is None else response.status
            raise VideoError(f"{url} answered {status}, not 200")
        self.decorate()
        self.recorder.capture()

    def wait_for(self, selector: str) -> None:
        """Wait until ``selector`` is visible (else the scene fails), then film a frame."""
        self.page.wait_for_selector(selector, state="visible", timeout=self.timeout_ms)
        self.recorder.capture()

    def attribute(self, selector: str, name: str) -> str:
        """An attribute of the element ``selector`` ("" when absent)."""
        return self.page.get_attribute(selector, name, timeout=self.timeout_ms) or ""

    def point(self, selector: str, steps: int | None = None) -> None:
        """Move the pointer onto ``selector`` (scrolled into view), filming each step."""
        target = self.page.locator(selector).first
        target.scroll_into_view_if_needed(timeout=self.timeout_ms)
        box = target.bounding_box(timeout=self.timeout_ms)
        if box is None:
            raise VideoError(f"{selector} is not on the page")
        x, y = box["x"] + box["width"] / 2, box["y"] + min(box["height"] / 2, 40)
        n = steps if steps is not None else (3 if self.short else 10)
        x0, y0 = self._mouse
        for i in range(1, n + 1):
            self._mouse = (x0 + (x - x0) * i / n, y0 + (y - y0) * i / n)
            self.page.mouse.move(*self._mouse)
            self.recorder.capture()

    def click(self, selector: str) -> None:
        """Point at ``selector`` and click it."""
        self.point(selector)
        self.page.mouse.down()
        self.recorder.capture()
        self.page.mouse.up()
        self.recorder.capture()

    def scroll_to(self, selector: str, steps: int | None = None) -> None:
        """Scroll smoothly until ``selector`` is near the top of the window, filming."""
        target = self.page.locator(selector).first
        target.wait_for(state="visible", timeout=self.timeout_ms)
        top = float(target.evaluate("el => el.getBoundingClientRect().top + window.scrollY"))
        start = float(self.page.evaluate("window.scrollY"))
        goal = max(0.0, top - 24)
        n = steps if steps is not None else (3 if self.short else 12)
        for i in range(1, n + 1):
            self.page.evaluate("y => window.scrollTo(0, y)", start + (goal - start) * i / n)
            self.recorder.capture()

    def hold(self, seconds: float) -> None:
        """Show the page as it is for ``seconds`` of video."""
        self.recorder.hold(seconds)
